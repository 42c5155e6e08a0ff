"""Everything MIJR computes about one image on its own, for pool images and targets alike.

At the working size (the image squared to `size`): superpixels and proposals, the bi-level
CRF pseudo ground truth, the base map's mean per superpixel, instance features (superpixel
box and 3× box; proposal centre superpixel's box and proposal box), the grey image for
dense SIFT, and, for images with a mask, each superpixel's pGT ∩ GT, pGT ∪ GT and GT pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np
import torch
from torch import Tensor

from salplug.data import square

from .features import box_means, instance_features
from .pseudo import FOREGROUND, bilevel, superpixel_labels
from .regions import Regions, regions

GROWTH = 3.0
"""Surroundings of a superpixel instance: its box grown this many times."""


@dataclass
class Record:
    """One analysed image (arrays at the working size; features after the pool's projection)."""

    key: str
    gray: np.ndarray  # S×S float32
    regions: Regions
    pgt: np.ndarray  # n int8: 1 fg, 0 bg, −1 ignored
    base: np.ndarray  # n float: mean base-map value
    features: Tensor  # n×F superpixel instances
    proposal_features: Tensor  # V×F proposal instances
    inter: np.ndarray | None  # n pixels of pGT ∩ GT (None: no mask)
    union: np.ndarray | None  # n pixels of pGT ∪ GT
    truth: np.ndarray | None = None  # n pixels of GT

    def true_labels(self) -> np.ndarray:
        """Per superpixel: 1 when most of it lies inside the mask (a pool fitted with masks only)."""
        if self.truth is None:
            raise ValueError(f"mijr: pool image {self.key} has no mask, so it has no true labels")
        return (self.truth / self.regions.area > 0.5).astype(np.int8)

    def to_state(self) -> dict:
        """Tensors and strings only, so the pool file loads with torch's weights_only reader."""
        r = self.regions
        state = {
            "key": self.key,
            "gray": torch.from_numpy((self.gray * 255).round().astype(np.uint8)),
            "pgt": torch.from_numpy(self.pgt),
            "base": torch.from_numpy(self.base.astype(np.float32)),
            "features": self.features.half(),
            "proposal_features": self.proposal_features.half(),
        }
        for f in fields(Regions):
            value = getattr(r, f.name)
            state[f"regions.{f.name}"] = torch.from_numpy(value.astype(np.int16) if f.name == "labels" else value)
        for name in ("inter", "union", "truth"):
            if getattr(self, name) is not None:
                state[name] = torch.from_numpy(getattr(self, name))
        return state

    @classmethod
    def from_state(cls, state: dict) -> Record:
        r = Regions(**{f.name: state[f"regions.{f.name}"].numpy() for f in fields(Regions)})
        r.labels = r.labels.astype(np.int64)
        return cls(
            key=state["key"], gray=state["gray"].numpy().astype(np.float32) / 255, regions=r,
            pgt=state["pgt"].numpy(), base=state["base"].numpy().astype(np.float64),
            features=state["features"].float(), proposal_features=state["proposal_features"].float(),
            inter=state["inter"].numpy() if "inter" in state else None,
            union=state["union"].numpy() if "union" in state else None,
            truth=state["truth"].numpy() if "truth" in state else None,
        )


def raw_features(fmap: Tensor, reg: Regions, size: int) -> tuple[Tensor, Tensor]:
    """Superpixel instances (box, 3× box) and proposal instances (centre superpixel's box, proposal box)."""
    sp = instance_features(fmap, reg.box, GROWTH, size, size)
    proposals = torch.cat([box_means(fmap, reg.box[reg.centre]), box_means(fmap, reg.proposal_box)], 1)
    return sp, proposals


def analyse(key: str, image: np.ndarray, prob: np.ndarray, mask: np.ndarray | None, fmap: Tensor, *,
            size: int, segments: int, compactness: float, proposals: int,
            aggressive: tuple[float, float, float], conservative: tuple[float, float, float]) -> Record:
    """Analyse one image: size×size×3 RGB (already squared, as the encoder saw it) and H×W map in [0, 1],
    optional H×W bool mask, and its feature map `fmap`; features stay raw (unprojected).
    """
    small = image
    p = np.clip(square(prob.astype(np.float32), size), 0, 1)
    reg = regions(small, segments, compactness, proposals)
    n = reg.count
    rgb = np.ascontiguousarray((small * 255).round().astype(np.uint8))
    pixel_pgt = bilevel(rgb, p, aggressive, conservative)
    flat = reg.labels.ravel()
    inter = union = truth = None
    if mask is not None:
        gt = square(mask.astype(np.float32), size).ravel() > 0.5
        fg = pixel_pgt.ravel() == FOREGROUND
        inter = np.bincount(flat, fg & gt, n)
        union = np.bincount(flat, fg | gt, n)
        truth = np.bincount(flat, gt, n)
    sp, prop = raw_features(fmap, reg, size)
    return Record(
        key=key, gray=cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), regions=reg,
        pgt=superpixel_labels(pixel_pgt, reg.labels, n), base=np.bincount(flat, p.ravel(), n) / reg.area,
        features=sp, proposal_features=prop, inter=inter, union=union, truth=truth,
    )
