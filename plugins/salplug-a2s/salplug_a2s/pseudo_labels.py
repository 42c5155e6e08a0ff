"""Stage-1 pseudo labels: σ(M), then DenseCRF (A2S defaults), then a 7×7 median filter."""

from __future__ import annotations

import functools
import multiprocessing

import numpy as np
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


def _refine_chunk(args: tuple[np.ndarray, np.ndarray, float, int]) -> np.ndarray:
    images, probs, gt_prob, median_size = args
    x = torch.from_numpy(images).float() / 255
    labels = refine(x, torch.from_numpy(probs), gt_prob=gt_prob, median_size=median_size)
    return np.round(labels.numpy() * 255).astype(np.uint8)


def _one_thread() -> None:
    torch.set_num_threads(1)


def refine_many(images: Tensor, probs: Tensor, *, gt_prob: float, median_size: int, workers: int = 0) -> Tensor:
    """`refine` over N uint8 images (N×3×S×S) and their σ(M) (N×1×S×S), in `workers` processes.

    The CRF is per image C++ on one core, so a pool of processes is what makes thousands of
    labels quick on a many-core machine. Returns N×1×S×S uint8 labels.
    """
    chunks = [(images[s : s + 8].numpy(), probs[s : s + 8].float().numpy(), gt_prob, median_size)
              for s in range(0, len(images), 8)]
    if workers <= 1:
        parts = [_refine_chunk(chunk) for chunk in chunks]
    else:
        with multiprocessing.get_context("spawn").Pool(workers, initializer=_one_thread) as pool:
            parts = pool.map(_refine_chunk, chunks)
    return torch.from_numpy(np.concatenate(parts)) if parts else torch.empty(0, 1, *images.shape[-2:], dtype=torch.uint8)
