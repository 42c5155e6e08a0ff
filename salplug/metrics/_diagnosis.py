"""Where a refiner's S-measure change comes from, image by image: spread thin, or a few images.

    salplug diagnose --refiner lps --dataset DIR --prior picanet [--set iterations=3]

`salplug eval` gives a dataset's means; this gives, per image, the S-measure of the prior and
of the refiner's output, and both maps' means on the mask's object and background pixels, so
a fall can be read as parts of objects lost or background gained. It explains figures; run on
a report set it must not become the source of a choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from salplug.components._base import Refiner
from salplug.data._datasets import FolderDataset
from salplug.data._io import image_tensor, map_tensor, read_image, read_map, read_mask, to_uint8
from salplug.metrics._sodmetrics import prepare_uint8, smeasure

LARGE = 0.05
"""An S-measure change at least this large counts as one image's large drop in the summary."""


@dataclass(frozen=True)
class Row:
    stem: str
    s_prior: float
    s_out: float
    object_prior: float
    object_out: float
    background_prior: float
    background_out: float

    @property
    def change(self) -> float:
        return self.s_out - self.s_prior


def s_measure(saliency: torch.Tensor, mask: np.ndarray) -> float:
    """The S-measure of one map as `salplug eval` scores it (the map stored at 8 bits)."""
    maps = torch.from_numpy(to_uint8(saliency))[None, None]
    pred, gt = prepare_uint8(maps, torch.from_numpy(mask.astype(np.uint8) * 255)[None, None])
    return float(smeasure(pred, gt))


def per_image(refiner: Refiner, dataset: Path, prior: str) -> list[Row]:
    """One row per image of `dataset` that has a mask and a `prior` map."""
    data = FolderDataset(dataset, masks=True, prior=prior)
    rows = []
    for stem in data.keys:
        before = map_tensor(read_map(data.prior_files[stem]))
        mask = read_mask(data.mask_files[stem])
        with torch.inference_mode():
            after = refiner(image_tensor(read_image(data.images[stem])), before)
        on = torch.from_numpy(mask)[None, None]
        rows.append(Row(stem, s_measure(before, mask), s_measure(after, mask), float(before[on].mean()),
                        float(after[on].mean()), float(before[~on].mean()), float(after[~on].mean())))
    return rows


def summary(rows: list[Row], worst: int = 10) -> str:
    """Mean change, the share of it carried by large drops, and the worst images."""
    change = np.array([r.change for r in rows])
    large = change[change <= -LARGE]
    carried = f"carrying {large.sum() / change.sum():.0%} of the net fall" if change.sum() < 0 else "the net change is a gain"
    lines = [f"{len(rows)} images: S-measure {np.mean([r.s_prior for r in rows]):.4f} -> "
             f"{np.mean([r.s_out for r in rows]):.4f} (mean change {change.mean():+.4f}); "
             f"{len(large)} images fall by {LARGE} or more, {carried}",
             "change    object prior -> out   background prior -> out   image"]
    for r in sorted(rows, key=lambda r: r.change)[:worst]:
        lines.append(f"{r.change:+.3f}    {r.object_prior:.2f} -> {r.object_out:.2f}           "
                     f"{r.background_prior:.2f} -> {r.background_out:.2f}               {r.stem}")
    return "\n".join(lines)
