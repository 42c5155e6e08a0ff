"""The metric part of LPS as pure tensor functions: soft anchors, distance softmax, label noise, iteration.

Everything works on whole batches: features are ``B×C×h×w``, weights ``B×1×h×w`` in [0, 1],
anchors ``B×K×C`` with K = 2 (foreground first, then background).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

EPS = 1e-6
"""Added to every region weight, so an empty region's anchor is the plain mean instead of 0/0."""


def region_weights(weights: Tensor) -> Tensor:
    """Foreground and background soft weights (w, 1 − w) as ``B×2×h×w``."""
    return torch.cat([weights, 1 - weights], dim=1)


def soft_average(features: Tensor, weights: Tensor) -> Tensor:
    """Weighted mean feature of each region: ``B×C×h×w`` and ``B×K×h×w`` weights give ``B×K×C``."""
    w = weights + EPS
    total = torch.einsum("bchw,bkhw->bkc", features, w)
    return total / w.sum(dim=(-2, -1))[..., None]


def soft_anchors(features: Tensor, weights: Tensor) -> Tensor:
    """μ_fg and μ_bg (``B×2×C``): the feature means over the map's region and its complement."""
    return soft_average(features, region_weights(weights))


def distances(features: Tensor, anchors: Tensor) -> Tensor:
    """Euclidean distance of every pixel embedding to every anchor: ``B×K×h×w``.

    Expanded as ‖f‖² − 2f·μ + ‖μ‖² so memory stays B×K×h×w whatever D is; the small
    constant under the root keeps the gradient finite where a pixel sits on an anchor.
    """
    squared = (
        features.pow(2).sum(dim=1, keepdim=True)
        - 2 * torch.einsum("bdhw,bkd->bkhw", features, anchors)
        + anchors.pow(2).sum(dim=-1)[..., None, None]
    )
    return torch.sqrt(squared.clamp_min(0) + EPS)


def class_probabilities(features: Tensor, anchors: Tensor) -> Tensor:
    """p(k | x) = softmax over k of −‖φ(x) − μ_k‖: ``B×K×h×w``, summing to 1 over k."""
    return torch.softmax(-distances(features, anchors), dim=1)


def foreground_logit(features: Tensor, anchors: Tensor) -> Tensor:
    """d_bg − d_fg (``B×1×h×w``): σ of it is p(fg | x), the two-anchor softmax, in a numerically safe form."""
    d = distances(features, anchors)
    return d[:, 1:2] - d[:, 0:1]


def flip_labels(mask: Tensor, rate: float, generator: torch.Generator | None = None) -> Tensor:
    """Flip each pixel of a boolean mask with probability `rate`: the paper's noisy anchors in training."""
    device = generator.device if generator is not None else mask.device
    flips = torch.rand(mask.shape, generator=generator, device=device).to(mask.device) < rate
    return mask.bool() ^ flips


def running_mean(y: Tensor, z: Tensor, t: int) -> Tensor:
    """Y(t+1) = t/(t+1)·Y(t) + 1/(t+1)·Z(t)."""
    return (t / (t + 1)) * y + z / (t + 1)


def iterate(step: Callable[[Tensor], Tensor], prior: Tensor, iterations: int, average: bool = True) -> Tensor:
    """Y(T) from Y(0) = prior and Z(t) = step(Y(t)); T = 1 gives Z(0).

    `average` (the paper): Y(t+1) is the running mean of Z(0..t). Otherwise Y(t+1) = Z(t):
    each round takes its anchors from the previous round's map alone, and the last map is returned.
    """
    if iterations < 1:
        raise ValueError(f"expected iterations >= 1, got {iterations}")
    y = prior
    for t in range(iterations):
        z = step(y)
        y = running_mean(y, z, t) if average else z
    return y
