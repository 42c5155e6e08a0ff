"""The SOD metrics every table reports, as metric components equal to PySODMetrics 1.6.2.

Each component scores a batch with `salplug.metrics` and keeps sums of the per-image
results, so `compute` aggregates as the reference does: per-image scores are averaged;
curves are averaged over images first, and their mean and max taken of that average.
States of several workers `merge` by adding their sums.
`update` takes maps already in [0, 1] (any float dtype; the maths is float64) and bool
masks; scoring 8-bit files the reference way means `salplug.metrics.prepare_uint8` first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor

from salplug.metrics import (
    LEVELS,
    emeasure,
    fmeasure,
    mae,
    overlap_adaptive,
    overlap_curves,
    smeasure,
    weighted_fmeasure,
)
from salplug.components._base import ComponentConfig, Metric
from salplug.components._contracts import check_map, check_mask

Scores = dict[str, Tensor]


def _float64(saliency: Tensor) -> Tensor:
    """The maps as float64: the very tensor when it already is one, so that the metrics
    scoring one batch in turn find the statistics they share."""
    return (saliency.detach() if saliency.requires_grad else saliency).to(torch.float64)


class _PerImageMetric(Metric):
    """Accumulates sums of per-image scores (and curves) between resets.

    Subclasses list their `keys` and implement `measure`; a key in `from_curves` is the
    mean or the max of a dataset-averaged curve instead of a mean over images. The state
    is float64 sums and an image count, so memory does not grow with the dataset and two
    states merge by addition.
    """

    keys: ClassVar[tuple[str, ...]] = ()
    from_curves: ClassVar[dict[str, tuple[str, Callable[[Tensor], Tensor]]]] = {}

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self._count = 0
        self._sums: dict[str, Tensor] = {}
        self._curve_sums: dict[str, Tensor] = {}

    def measure(self, pred: Tensor, gt: Tensor) -> tuple[Scores, Scores]:
        """Per-image scores (``B``) and curves (``B×256``) of a float64 batch."""
        raise NotImplementedError

    def update(self, saliency: Tensor, mask: Tensor) -> Scores:
        check_map(saliency, values=False)
        check_mask(mask, like=saliency)
        with torch.no_grad():
            scores, curves = self.measure(_float64(saliency), mask)
        self._add(
            saliency.shape[0],
            {k: v.detach().cpu().to(torch.float64).sum(dim=0) for k, v in scores.items()},
            {k: v.detach().cpu().to(torch.float64).sum(dim=0) for k, v in curves.items()},
        )
        return scores

    def _add(self, count: int, sums: Scores, curve_sums: Scores) -> None:
        self._count += count
        for store, new in ((self._sums, sums), (self._curve_sums, curve_sums)):
            for key, value in new.items():
                store[key] = store[key] + value if key in store else value.clone()

    def merge(self, other: Metric) -> None:
        if type(other) is not type(self) or other.config != self.config:
            raise TypeError(f"metric {self.name!r}: expected a state of the same metric and config, got {other!r}")
        self._add(other._count, other._sums, other._curve_sums)

    def _averaged_curves(self) -> Scores:
        return {key: total / self._count for key, total in self._curve_sums.items()}

    def compute(self) -> dict[str, float]:
        if not self._count:
            return {key: math.nan for key in self.keys}
        curves = self._averaged_curves()
        result = {}
        for key in self.keys:
            if key in self.from_curves:
                curve, reduce = self.from_curves[key]
                result[key] = float(reduce(curves[curve]))
            else:
                result[key] = float(self._sums[key] / self._count)
        return result

    def reset(self) -> None:
        self._count = 0
        self._sums.clear()
        self._curve_sums.clear()


class _CurveMetric(_PerImageMetric):
    """A metric with threshold curves, which `salplug eval` plots."""

    curve_keys: ClassVar[tuple[str, ...]] = ()

    def curves(self) -> dict[str, Tensor]:
        """Dataset curves (per-image curves averaged), 256 long; index i is threshold 255 - i.

        NaN-filled before any update.
        """
        if not self._count:
            return {key: torch.full((LEVELS,), math.nan, dtype=torch.float64) for key in self.curve_keys}
        return self._averaged_curves()


class MAE(_PerImageMetric):
    """Mean absolute error between map and binary mask, averaged over images."""

    name = "mae"
    keys = ("mae",)

    def measure(self, pred: Tensor, gt: Tensor) -> tuple[Scores, Scores]:
        return {"mae": mae(pred, gt)}, {}


class FMeasure(_CurveMetric):
    """F-measure at the adaptive threshold (2 × mean), and the mean and max of its curve.

    Per image, `update` reports the mean and max of that image's own curve; the dataset
    `max_f` is the max of the averaged curve, as published tables use.
    """

    name = "fmeasure"
    keys = ("adp_f", "mean_f", "max_f")
    curve_keys = ("precision", "recall", "fmeasure")
    from_curves = {"mean_f": ("fmeasure", torch.mean), "max_f": ("fmeasure", torch.amax)}

    class Config(ComponentConfig):
        beta2: float = Field(default=0.3, gt=0, description="β² of the F-measure; 0.3 weighs precision over recall.")

    def measure(self, pred: Tensor, gt: Tensor) -> tuple[Scores, Scores]:
        adaptive, precision, recall, f = fmeasure(pred, gt, self.config.beta2)
        scores = {"adp_f": adaptive, "mean_f": f.mean(dim=1), "max_f": f.amax(dim=1)}
        return scores, {"precision": precision, "recall": recall, "fmeasure": f}


class SMeasure(_PerImageMetric):
    """Structure measure: object-aware and region-aware structural similarity.

    NaN, as in the reference, for images whose foreground centroid rounds to the last row
    or column (an empty quadrant).
    """

    name = "smeasure"
    keys = ("sm",)

    class Config(ComponentConfig):
        alpha: float = Field(default=0.5, ge=0, le=1, description="Weight of the object score against the region's.")

    def measure(self, pred: Tensor, gt: Tensor) -> tuple[Scores, Scores]:
        return {"sm": smeasure(pred, gt, self.config.alpha)}, {}


class EMeasure(_CurveMetric):
    """Enhanced-alignment measure at the adaptive threshold, and the mean and max of its curve."""

    name = "emeasure"
    keys = ("adp_e", "mean_e", "max_e")
    curve_keys = ("emeasure",)
    from_curves = {"mean_e": ("emeasure", torch.mean), "max_e": ("emeasure", torch.amax)}

    def measure(self, pred: Tensor, gt: Tensor) -> tuple[Scores, Scores]:
        adaptive, e = emeasure(pred, gt)
        scores = {"adp_e": adaptive, "mean_e": e.mean(dim=1), "max_e": e.amax(dim=1)}
        return scores, {"emeasure": e}


class WeightedFMeasure(_PerImageMetric):
    """Weighted F-measure (pixel dependency and importance); 0 for images without foreground.

    Its distance transform runs on the CPU whatever the inputs' device.
    """

    name = "wfmeasure"
    keys = ("wfm",)

    class Config(ComponentConfig):
        beta: float = Field(
            default=1.0, gt=0, description="Weight of precision, used as the reference uses it: (1+β)RP / (R+βP)."
        )

    def measure(self, pred: Tensor, gt: Tensor) -> tuple[Scores, Scores]:
        return {"wfm": weighted_fmeasure(pred, gt, self.config.beta)}, {}


class Overlap(_CurveMetric):
    """IoU and Dice of the map binarised at the adaptive threshold (0 where undefined), and
    their curves against the threshold (PySODMetrics' dynamic IoU and Dice)."""

    name = "overlap"
    keys = ("adp_iou", "adp_dice")
    curve_keys = ("iou", "dice")

    def measure(self, pred: Tensor, gt: Tensor) -> tuple[Scores, Scores]:
        iou, dice = overlap_adaptive(pred, gt)
        iou_curve, dice_curve = overlap_curves(pred, gt)
        return {"adp_iou": iou, "adp_dice": dice}, {"iou": iou_curve, "dice": dice_curve}


METRICS: tuple[type[Metric], ...] = (MAE, FMeasure, SMeasure, EMeasure, WeightedFMeasure, Overlap)
"""The standard set, in the column order of published tables."""


def standard_metrics() -> list[Metric]:
    """One of each standard metric with its default options."""
    return [cls() for cls in METRICS]
