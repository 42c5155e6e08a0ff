"""Boundary metrics of the mask-refinement literature, on single H×W maps.

Region scores (MAE, F-measure) barely move when a refiner fixes a thin contour, because
the contour holds few pixels; these two scores look only near the object's boundary.

- `mean_boundary_accuracy` (mBA): Cheng et al., "CascadePSP: Toward Class-Agnostic and
  Very High-Resolution Segmentation via Global and Local Refinement", CVPR 2020; it follows
  `compute_boundary_acc` in util/compute_boundary_acc.py and the thresholds of eval_post.py
  of github.com/hkchengrex/CascadePSP.
- `relaxed_boundary_f` (relaxF^b_β): Qin et al., "U²-Net: Going Deeper with Nested
  U-Structure for Salient Object Detection", Pattern Recognition 2020 (also BASNet, CVPR
  2019). Its authors never published code for it (xuebinqin/Binary-Segmentation-Evaluation-Tool
  issue #4), so it follows the paper's text; the choices the text leaves open are stated.

Inputs: `pred` is uint8 in 0–255 (divided by 255) or floating point in [0, 1]; `gt` is
an 8-bit mask whose foreground is > 128; both are H×W. Morphology uses OpenCV's default
border, under which the image frame is neither foreground nor background, so a mask that
touches the frame has no boundary along it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

MBA_STEPS = 5
"""Radii over which CascadePSP averages the boundary accuracy."""


def _binarise(pred: np.ndarray, gt: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Check the pair, then return (pred / 255 or pred) > threshold and gt > 128."""
    for what, x in (("pred", pred), ("gt", gt)):
        if not isinstance(x, np.ndarray) or x.ndim != 2:
            got = f"shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"{what}: expected an H×W numpy array, got {got}")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same H×W shape: expected {gt.shape} (gt's), got {pred.shape}")
    if gt.dtype != np.uint8:
        raise ValueError(f"gt: expected an 8-bit mask (uint8), got dtype {gt.dtype}")
    if pred.dtype == np.uint8:
        unit = pred / 255.0
    elif np.issubdtype(pred.dtype, np.floating):
        if not (pred.min() >= 0.0 and pred.max() <= 1.0):
            raise ValueError(f"pred: expected floats in [0, 1], got values in [{pred.min()}, {pred.max()}]")
        unit = pred
    else:
        raise ValueError(f"pred: expected uint8 (0-255) or floats in [0, 1], got dtype {pred.dtype}")
    return unit > threshold, gt > 128


def mba_radii(height: int, width: int) -> list[int]:
    """CascadePSP's band radii: 1 + int((max - 1) / 5 · i) for i < 5, max = (H + W) / 300.

    int() truncates toward zero, so images with H + W < 675 use radius 1 five times.
    """
    max_radius = (width + height) / 300
    return [1 + int((max_radius - 1) / MBA_STEPS * i) for i in range(MBA_STEPS)]


def mean_boundary_accuracy(pred: np.ndarray, gt: np.ndarray) -> float:
    """CascadePSP's mBA of one image: pixel accuracy inside GT boundary bands, averaged over radii.

    Both maps are binarised as CascadePSP's eval_post.py does: pred > 128 on the 0–255 scale
    (pred > 128/255 for floats) and gt > 128. For each radius r of `mba_radii`, the band is
    where the morphological gradient (dilation minus erosion) of the GT with an
    (2r+1)×(2r+1) OpenCV ellipse kernel is non-zero; the score is the fraction of band pixels
    where prediction and GT agree, and mBA is the plain mean of the five (a repeated radius
    counts each time). A GT with no boundary (all background or all foreground) has an empty
    band: the reference divides 0 by 0 there, and this returns NaN.
    """
    fg, gt_fg = _binarise(pred, gt, 128 / 255)
    if gt_fg.all() or not gt_fg.any():
        return math.nan
    gt8 = gt_fg.astype(np.uint8)
    agree = fg == gt_fg
    accuracies = []
    for radius in mba_radii(*gt.shape):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        band = cv2.morphologyEx(gt8, cv2.MORPH_GRADIENT, kernel) > 0
        accuracies.append(np.count_nonzero(agree & band) / np.count_nonzero(band))
    return sum(accuracies) / MBA_STEPS


_SQUARE3 = np.ones((3, 3), np.uint8)


def _boundary(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide inner boundary: the mask XOR its erosion by a 3×3 square."""
    mask8 = mask.astype(np.uint8)
    return (mask8 ^ cv2.erode(mask8, _SQUARE3)).astype(bool)


def _disk(radius: int) -> np.ndarray:
    """Every offset (dy, dx) with dy² + dx² ≤ radius², as a dilation kernel."""
    d = np.arange(-radius, radius + 1)
    return (d[:, None] ** 2 + d[None, :] ** 2 <= radius**2).astype(np.uint8)


def relaxed_boundary_f(pred: np.ndarray, gt: np.ndarray, relax: int = 3, beta2: float = 0.3) -> float:
    """U²-Net's relaxed boundary F-measure of one image (relax = ρ = 3, β² = 0.3).

    The prediction is binarised at pred > 0.5 (uint8: pred ≥ 128), the GT at gt > 128. Each
    boundary is the mask XOR its erosion by a 3×3 square (the textbook boundary extraction).
    Precision is the fraction of predicted boundary pixels within Euclidean distance `relax`
    of a GT boundary pixel, recall the fraction of GT boundary pixels within `relax` of a
    predicted one, and F = (1 + β²)·P·R / (β²·P + R). A side with no boundary pixels has
    precision (or recall) 0, and F is 0 when both are 0, as the 1e-8 guards of Qin's
    evaluation tool make them.
    """
    if not (isinstance(relax, (int, np.integer)) and relax >= 0):
        raise ValueError(f"relax: expected a non-negative int of pixels, got {relax!r}")
    if not beta2 > 0:
        raise ValueError(f"beta2: expected a positive float, got {beta2!r}")
    fg, gt_fg = _binarise(pred, gt, 0.5)
    pred_edge, gt_edge = _boundary(fg), _boundary(gt_fg)
    reach = _disk(relax)
    near_gt = cv2.dilate(gt_edge.astype(np.uint8), reach).astype(bool)
    near_pred = cv2.dilate(pred_edge.astype(np.uint8), reach).astype(bool)
    n_pred, n_gt = np.count_nonzero(pred_edge), np.count_nonzero(gt_edge)
    precision = np.count_nonzero(pred_edge & near_gt) / n_pred if n_pred else 0.0
    recall = np.count_nonzero(gt_edge & near_pred) / n_gt if n_gt else 0.0
    if precision + recall == 0:
        return 0.0
    return (1 + beta2) * precision * recall / (beta2 * precision + recall)


class MBA:
    """Dataset mBA, as CascadePSP reports it: the mean of the per-image scores."""

    def __init__(self):
        self.scores: list[float] = []

    def step(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Score one image (see `mean_boundary_accuracy` for the inputs)."""
        self.scores.append(mean_boundary_accuracy(pred, gt))

    def results(self) -> float:
        """The mean over the images stepped so far; NaN if any GT had no boundary."""
        if not self.scores:
            raise ValueError("MBA.results: expected at least one step(pred, gt), got none")
        return sum(self.scores) / len(self.scores)


class RelaxedBoundaryF:
    """Dataset relaxF^b_β, as U²-Net reports it: the mean of the per-image scores."""

    def __init__(self, relax: int = 3, beta2: float = 0.3):
        self.relax, self.beta2 = relax, beta2
        self.scores: list[float] = []

    def step(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Score one image (see `relaxed_boundary_f` for the inputs)."""
        self.scores.append(relaxed_boundary_f(pred, gt, self.relax, self.beta2))

    def results(self) -> float:
        """The mean over the images stepped so far."""
        if not self.scores:
            raise ValueError("RelaxedBoundaryF.results: expected at least one step(pred, gt), got none")
        return sum(self.scores) / len(self.scores)
