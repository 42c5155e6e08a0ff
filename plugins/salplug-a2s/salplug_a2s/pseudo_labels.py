"""Stage-1 pseudo labels: σ(M), then DenseCRF (A2S defaults), then a 7×7 median filter."""

from __future__ import annotations

import functools

import torch
from torch import Tensor

import salplug


@functools.lru_cache(maxsize=8)
def _steps(gt_prob: float, median_size: int):
    crf = salplug.build("postprocessor", "densecrf", unary="labels", gt_prob=gt_prob)
    median = salplug.build("postprocessor", "median", size=median_size)
    return crf, median


def refine(image: Tensor, prob: Tensor, *, gt_prob: float = 0.7, median_size: int = 7) -> Tensor:
    """DenseCRF with `unary='labels'` (the map thresholded at 0.5, trusted at gt_prob; Gaussian sxy 3
    compat 3, bilateral sxy 50 srgb 5 compat 10, 10 steps), then a `median_size` median filter.

    image B×3×H×W in [0, 1], prob B×1×H×W in [0, 1]; returns B×1×H×W in [0, 1] on prob's device.
    """
    crf, median = _steps(gt_prob, median_size)
    with torch.no_grad():
        soft = crf(image.detach().cpu(), prob.detach().cpu())
        return median(image.detach().cpu(), soft).to(prob.device).clamp(0, 1)
