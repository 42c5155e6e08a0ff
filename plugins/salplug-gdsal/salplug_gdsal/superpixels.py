"""Low-level steps of gdsal on one image (numpy, CPU): pruning, SLIC smoothing, Lab colour contrast.

Pruning is a soft threshold (subtract, clip at zero, rescale), so a map never jumps when a
value crosses the threshold: batched and single runs agree within float noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.color import rgb2lab

from salplug.ops import superpixels


def prune(values: np.ndarray, threshold: float) -> np.ndarray:
    """Drop values below `threshold` × max, shift the rest down to start at 0, rescale to [0, 1].

    An all-zero (or non-finite) map stays all zero instead of dividing by zero.
    """
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = values.max(initial=0.0)
    if top <= 0:
        return np.zeros_like(values, dtype=np.float32)
    kept = np.clip(values / top - threshold, 0.0, None)
    peak = kept.max()
    return (kept / peak if peak > 0 else kept).astype(np.float32)


def segment_means(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean of `values` (H×W or H×W×C) over each superpixel: n or n×C."""
    flat = labels.ravel()
    counts = np.bincount(flat).astype(np.float64)
    columns = values.reshape(flat.size, -1)
    sums = np.stack([np.bincount(flat, weights=col, minlength=counts.size) for col in columns.T], axis=1)
    means = sums / counts[:, None]
    return means[:, 0] if values.ndim == 2 else means


def smooth(raw: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each pixel takes its superpixel's mean: gradient speckle becomes region-level saliency."""
    return segment_means(raw, labels)[labels]


def colour_contrast(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Global Lab contrast per pixel in [0, 1]: each superpixel's summed distance to all others' mean colours."""
    means = segment_means(rgb2lab(image), labels)
    distances = np.linalg.norm(means[:, None, :] - means[None, :, :], axis=-1)
    contrast = distances.sum(axis=1)
    span = contrast.max() - contrast.min()
    scaled = (contrast - contrast.min()) / span if span > 0 else np.zeros_like(contrast)
    return scaled[labels]


def refine(
    image: np.ndarray,
    raw: np.ndarray,
    *,
    n_segments: int | Sequence[int],
    compactness: float,
    alpha: float,
    raw_threshold: float,
    final_threshold: float,
) -> np.ndarray:
    """Steps 3-5 of the method: prune the raw map, smooth it over SLIC superpixels, weight by colour contrast.

    With several `n_segments` (SLIC scales), the smoothed maps and the contrast maps are each
    averaged over the scales before the weighting; one scale is the paper's single SLIC.
    Contrast is mapped to [alpha, 1 + alpha] so it re-weights the gradient evidence but
    never erases it.
    """
    scales = [n_segments] if isinstance(n_segments, int) else list(n_segments)
    pruned = prune(raw, raw_threshold)
    smoothed = np.zeros(raw.shape, dtype=np.float64)
    contrast = np.zeros(raw.shape, dtype=np.float64)
    for count in scales:
        labels = superpixels(image, count, compactness)
        smoothed += prune(smooth(pruned, labels), 0.0)
        contrast += colour_contrast(image, labels)
    weighted = (smoothed / len(scales)) * (alpha + contrast / len(scales))
    return prune(weighted, final_threshold)
