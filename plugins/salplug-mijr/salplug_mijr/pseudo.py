"""Stage 4: bi-level CRF pseudo ground truth from the base detector's map.

Two dense CRFs read the same map: an aggressive one (θα, θβ, θγ = 5, 1, 2: short-range
kernels, the labels follow the map closely) and a conservative one (200, 50, 20: long-range
kernels, the labels follow large colour regions). Where both call a pixel salient it is
foreground, where neither does it is background; where they disagree it is left out.
"""

from __future__ import annotations

import numpy as np
import torch

from salplug.builtins.crf import DenseCRF

FOREGROUND, BACKGROUND, IGNORED = 1, 0, -1
AGGRESSIVE = (5.0, 1.0, 2.0)
CONSERVATIVE = (200.0, 50.0, 20.0)


def crf_labels(image: np.ndarray, prob: np.ndarray, theta: tuple[float, float, float]) -> np.ndarray:
    """Hard dense-CRF labels (H×W bool) with bilateral θα (px), θβ (0-255 colour) and Gaussian θγ (px)."""
    alpha, beta, gamma = theta
    crf = DenseCRF(bilateral_sxy=alpha, bilateral_srgb=beta, gaussian_sxy=gamma, output="hard")
    rgb = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    out = crf(rgb, torch.from_numpy(prob)[None, None].float())
    return out[0, 0].numpy() > 0.5


def bilevel(image: np.ndarray, prob: np.ndarray, aggressive=AGGRESSIVE, conservative=CONSERVATIVE) -> np.ndarray:
    """H×W int8 pseudo ground truth: 1 foreground (both CRFs), 0 background (neither), −1 ignored."""
    a = crf_labels(image, prob, aggressive)
    c = crf_labels(image, prob, conservative)
    out = np.full(prob.shape, IGNORED, dtype=np.int8)
    out[a & c] = FOREGROUND
    out[~a & ~c] = BACKGROUND
    return out


def superpixel_labels(pixel: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Per-superpixel pseudo label: the class (fg/bg) of more than half its pixels, else ignored."""
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n)
    fg = np.bincount(flat, pixel.ravel() == FOREGROUND, n) / area
    bg = np.bincount(flat, pixel.ravel() == BACKGROUND, n) / area
    return np.where(fg > 0.5, FOREGROUND, np.where(bg > 0.5, BACKGROUND, IGNORED)).astype(np.int8)
