"""A2S losses: the label-free activation loss of stage 1, BCE + SSIM + IoU of stage 2, and its label rectifying."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def activation_term(theta: Tensor, *, l1: float = 0.1, fraction: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """1 − mean over a random `fraction` of pixels of (p − 0.5)² + l1·|p − 0.5|, p = σ(θ).

    Minimising it pushes every pixel's decision value away from 0 (p away from 0.5).
    `fraction=1` uses every pixel (deterministic).
    """
    p = torch.sigmoid(theta)
    d = p - 0.5
    per_pixel = d * d + l1 * d.abs()
    if fraction >= 1:
        return 1 - per_pixel.mean()
    keep = (torch.rand(per_pixel.shape, generator=generator, device="cpu") < fraction).to(per_pixel)
    return 1 - (per_pixel * keep).sum() / keep.sum().clamp_min(1)


def activation_loss(
    maps: Sequence[Tensor],
    weights: Sequence[float] = (1.0, 0.1, 0.3, 0.5),
    *,
    l1: float = 0.1,
    fraction: float = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Weighted sum of `activation_term` over the fused map and the per-level maps."""
    if len(maps) != len(weights):
        raise ValueError(f"expected {len(weights)} maps (fused + levels), got {len(maps)}")
    return sum(w * activation_term(m, l1=l1, fraction=fraction, generator=generator) for m, w in zip(maps, weights))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel SSIM map of two B×1×H×W maps in [0, 1] (Gaussian window, zero padding, C1=0.01², C2=0.03²)."""
    w = gaussian_window(window, sigma).to(a)
    pad = window // 2
    mu_a, mu_b = F.conv2d(a, w, padding=pad), F.conv2d(b, w, padding=pad)
    var_a = F.conv2d(a * a, w, padding=pad) - mu_a**2
    var_b = F.conv2d(b * b, w, padding=pad) - mu_b**2
    cov = F.conv2d(a * b, w, padding=pad) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def iou_loss(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """1 − soft IoU per image, averaged over the batch."""
    inter = (pred * target).sum(dim=(1, 2, 3))
    union = (pred + target - pred * target).sum(dim=(1, 2, 3))
    return (1 - inter / (union + eps)).mean()


def detector_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Stage-2 loss: BCE + (1 − SSIM) + IoU of σ(logits) against the labels binarised at 0.5."""
    target = (labels > 0.5).to(logits)
    pred = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    return bce + (1 - ssim(pred, target)).mean() + iou_loss(pred, target)


def rectify(labels: Tensor, prediction: Tensor, lam: float = 0.4) -> Tensor:
    """Online label rectifying: G ← λ·G + (1 − λ)·Y (Y the detector's map in [0, 1])."""
    if not 0 <= lam <= 1 or math.isnan(lam):
        raise ValueError(f"expected 0 <= lambda <= 1, got {lam}")
    return lam * labels + (1 - lam) * prediction


LABEL_RESOLUTION = 1 / 512
"""Half a step of the 8-bit pseudo labels: a term weighted below it cannot change them."""


def rectifications(epochs_done: int, rectify_after: int) -> int:
    """How often every label has been rectified after `epochs_done` epochs (each image once per epoch)."""
    return max(0, epochs_done - rectify_after)


def needs_first_labels(times: int, lam: float) -> bool:
    """Whether `rebuilt_labels` needs stage 1's pseudo labels (their weight λ^times still counts)."""
    return lam**times >= LABEL_RESOLUTION


def rebuilt_labels(first: torch.Tensor | None, current: torch.Tensor, times: int, lam: float) -> torch.Tensor:
    """Labels after `times` rectifications G ← λ·G + (1 − λ)·Y, with every Y taken as the current map.

    The exact labels mix the maps of the last epochs (weights 1 − λ, λ(1 − λ), ...); the detector
    changes little between late epochs, so its current map stands in for them. `first` (stage 1's
    pseudo labels) is needed only while its weight λ^times can still move an 8-bit label.
    """
    if not needs_first_labels(times, lam):
        return current
    weight = lam**times
    if first is None:
        raise ValueError(f"after {times} rectifications the stage-1 labels still weigh {weight:.3g}: pass them")
    return weight * first + (1 - weight) * current
