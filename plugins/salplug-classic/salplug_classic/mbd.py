"""Minimum barrier saliency: MB and MB+ (Zhang et al., "Minimum Barrier Salient Object Detection at 80 FPS", ICCV 2015).

The minimum barrier distance from the image border (the span max - min of colour values
along the best path) is small for background, which touches the border through
homogeneous regions, and large for objects. FastMBD approximates it with alternating
raster scans; here each scan walks the anti-diagonals in order, so every pixel of one
diagonal is updated at once with numpy yet sees exactly the neighbours the sequential
raster order would give it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
from pydantic import Field
from skimage.morphology import reconstruction
from torch import Tensor

import salplug
from salplug.ops import to_hwc

from ._common import finish, lab_u8, resize_max_side

Diagonal = tuple[np.ndarray, np.ndarray, np.ndarray]


@functools.lru_cache(maxsize=8)
def _diagonals(height: int, width: int) -> tuple[list[Diagonal], list[Diagonal]]:
    """Interior pixels grouped by anti-diagonal, with their neighbours, for the forward and backward scans.

    Forward scans use (left, up) and run top-left to bottom-right; backward scans use
    (right, down) and run the other way. Border pixels are the seeds and never change.
    """
    rows, cols = np.mgrid[1 : height - 1, 1 : width - 1]
    rows, cols = rows.ravel(), cols.ravel()
    order = np.argsort(rows + cols, kind="stable")
    flat = (rows * width + cols)[order]
    bounds = np.flatnonzero(np.diff((rows + cols)[order])) + 1
    groups = np.split(flat, bounds) if flat.size else []
    forward = [(idx, idx - 1, idx - width) for idx in groups]
    backward = [(idx, idx + 1, idx + width) for idx in reversed(groups)]
    return forward, backward


def _scan(feature: np.ndarray, dist: np.ndarray, low: np.ndarray, high: np.ndarray, diagonals: list[Diagonal]) -> None:
    """One raster scan, in place, on N flattened channels (N×HW); neighbours tried in the paper's order."""
    for idx, first, second in diagonals:
        value = feature[:, idx]
        best, best_low, best_high = dist[:, idx], low[:, idx], high[:, idx]
        for neighbour in (first, second):
            cand_low = np.minimum(low[:, neighbour], value)
            cand_high = np.maximum(high[:, neighbour], value)
            cand = cand_high - cand_low
            better = cand < best
            best = np.where(better, cand, best)
            best_low = np.where(better, cand_low, best_low)
            best_high = np.where(better, cand_high, best_high)
        dist[:, idx], low[:, idx], high[:, idx] = best, best_low, best_high


def fast_mbd(channels: np.ndarray, passes: int) -> np.ndarray:
    """FastMBD from the image border for N×H×W channels; `passes` alternating forward/backward scans."""
    count, height, width = channels.shape
    feature = channels.reshape(count, -1).astype(np.float32)
    dist = np.zeros_like(feature)
    inner = np.zeros((height, width), dtype=bool)
    inner[1:-1, 1:-1] = True
    dist[:, inner.ravel()] = np.inf
    low, high = feature.copy(), feature.copy()
    forward, backward = _diagonals(height, width)
    for k in range(passes):
        _scan(feature, dist, low, high, forward if k % 2 == 0 else backward)
    return np.where(np.isfinite(dist), dist, 0.0).reshape(count, height, width)


def _stretch(array: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] (MATLAB's mat2gray); constant arrays become zeros."""
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high - low > 1e-12 else np.zeros_like(array)


class MinimumBarrier(salplug.PriorProvider):
    """MB: the FastMBD distance of every pixel from the image border, summed over colour channels."""

    name = "mbd"
    example_config = {"max_side": 64}

    class Config(salplug.ComponentConfig):
        max_side: int = Field(default=300, ge=8, description="Longer side the image is resized to (paper: 300 px).")
        passes: int = Field(default=3, ge=1, description="Raster scans, alternating forward and backward (paper: 3).")
        color_space: Literal["lab", "rgb"] = Field(
            default="lab", description="Channels the distance runs on, 8-bit scale (paper: Lab)."
        )
        median_radius: int = Field(
            default=2, ge=0, description="Median filter radius applied to each channel first (authors' code: 5×5)."
        )

    def _features(self, image: Tensor) -> np.ndarray:
        """B×h×w×3 float32 channels on the 0-255 scale at the working size."""
        small = [resize_max_side(rgb, self.config.max_side) for rgb in to_hwc(image)]
        if self.config.color_space == "lab":
            return np.stack([lab_u8(rgb) for rgb in small]).astype(np.float32)
        return np.stack([rgb * 255.0 for rgb in small]).astype(np.float32)

    def _distance(self, features: np.ndarray) -> np.ndarray:
        """Per-image MBD maps (B×h×w), each stretched to [0, 1]."""
        size = 2 * self.config.median_radius + 1
        if size > 1:
            features = np.stack([cv2.medianBlur(f.astype(np.uint8), size).astype(np.float32) for f in features])
        batch, height, width, _ = features.shape
        channels = features.transpose(0, 3, 1, 2).reshape(batch * 3, height, width)
        dist = fast_mbd(channels, self.config.passes).reshape(batch, 3, height, width).sum(axis=1)
        return np.stack([_stretch(d) for d in dist])

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        height, width = image.shape[-2:]
        return finish(list(self._distance(self._features(image))), height, width, image.device)


class MinimumBarrierPlus(MinimumBarrier):
    """MB+: MB plus the border-contrast backgroundness cue and the paper's post-processing."""

    name = "mbd-plus"
    example_config = {"max_side": 64}

    class Config(MinimumBarrier.Config):
        margin: float = Field(
            default=0.1, gt=0, lt=0.5, description="Border region thickness as a fraction of each side (paper: 10%)."
        )
        covariance_reg: float = Field(
            default=50.0, ge=0, description="Added to each border region's colour covariance diagonal (0-255 scale)."
        )
        center_bias: bool = Field(default=True, description="Multiply by 1 - normalised distance from the centre.")
        smooth_alpha: float = Field(
            default=50.0, ge=0, description="Morphological smoothing width alpha * sqrt(mean saliency), in pixels."
        )
        min_smooth: int = Field(default=3, ge=1, description="Smallest morphological smoothing width, in pixels.")
        contrast_b: float = Field(default=10.0, gt=0, description="Slope b of the contrast-enhancing sigmoid.")

    def _backgroundness(self, feature: np.ndarray) -> np.ndarray:
        """Mahalanobis distance to each border region's colours; the sum of the 4 less the largest."""
        height, width, _ = feature.shape
        rows = max(1, round(self.config.margin * height))
        cols = max(1, round(self.config.margin * width))
        regions = (feature[:rows], feature[-rows:], feature[:, :cols], feature[:, -cols:])
        maps = []
        for region in regions:
            pixels = region.reshape(-1, 3).astype(np.float64)
            mean = pixels.mean(axis=0)
            centred = pixels - mean
            covariance = centred.T @ centred / len(pixels) + self.config.covariance_reg * np.eye(3)
            diff = feature.astype(np.float64) - mean
            squared = np.einsum("hwi,ij,hwj->hw", diff, np.linalg.pinv(covariance), diff)
            maps.append(_stretch(np.sqrt(np.maximum(squared, 0.0))))
        stacked = np.stack(maps)
        return _stretch(stacked.sum(axis=0) - stacked.max(axis=0))

    def _smooth(self, saliency: np.ndarray) -> np.ndarray:
        """Opening then closing by reconstruction with a square of side alpha * sqrt(mean)."""
        side = max(math.floor(self.config.smooth_alpha * math.sqrt(float(saliency.mean()))), self.config.min_smooth)
        kernel = np.ones((side, side), dtype=np.uint8)
        opened = reconstruction(cv2.erode(saliency, kernel), saliency, method="dilation")
        closed = reconstruction(cv2.dilate(opened, kernel), opened, method="erosion")
        return _stretch(closed.astype(np.float32))

    def _enhance(self, saliency: np.ndarray) -> np.ndarray:
        """Sigmoid centred between the mean of the bright half and the mean of the dark half."""
        split = 0.5 * float(saliency.max())
        bright, dark = saliency[saliency >= split], saliency[saliency < split]
        threshold = 0.5 * ((bright.mean() if bright.size else 0.0) + (dark.mean() if dark.size else 0.0))
        return 1.0 / (1.0 + np.exp(-self.config.contrast_b * (saliency - threshold)))

    @staticmethod
    def _center_map(height: int, width: int) -> np.ndarray:
        ys = (np.arange(height) + 0.5) / height * 2.0 - 1.0
        xs = (np.arange(width) + 0.5) / width * 2.0 - 1.0
        radius = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
        return (1.0 - radius / radius.max()).astype(np.float32)

    def _post(self, saliency: np.ndarray) -> np.ndarray:
        if self.config.center_bias:
            saliency = saliency * self._center_map(*saliency.shape)
        return self._enhance(self._smooth(_stretch(saliency).astype(np.float32)))

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        height, width = image.shape[-2:]
        features = self._features(image)
        distance = self._distance(features)
        maps = [self._post(d + self._backgroundness(f)) for d, f in zip(distance, features, strict=True)]
        return finish(maps, height, width, image.device)
