"""Stage 1: a GIST + HOG scene descriptor per image, and the nearest images of the pool.

GIST (Oliva & Torralba, 2001): Gabor energies at 4 scales × 8 orientations, averaged over a
4×4 grid of a 128×128 grey image (512 values). HOG: 9-bin gradient histograms in 16-pixel
cells, 2×2-cell blocks (1764 values). Each part is L2-normalised so both weigh the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from skimage.feature import hog
from torch import Tensor

SIDE = 128
SCALES = 4
ORIENTATIONS = 8
GRID = 4


def gabor_bank(side: int = SIDE, scales: int = SCALES, orientations: int = ORIENTATIONS) -> Tensor:
    """Frequency-domain Gabor filters (scales·orientations × side × side), centre frequencies 0.25 / 2^s."""
    f = torch.fft.fftfreq(side)
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    radius = torch.sqrt(fx**2 + fy**2).clamp_min(1e-6)
    angle = torch.atan2(fy, fx)
    bank = []
    for s in range(scales):
        centre = 0.25 / 2**s
        radial = torch.exp(-((torch.log(radius / centre)) ** 2) / (2 * 0.55**2))
        for o in range(orientations):
            theta = math.pi * o / orientations
            delta = torch.remainder(angle - theta + math.pi / 2, math.pi) - math.pi / 2  # even filter: θ and θ+π
            bank.append(radial * torch.exp(-(delta**2) / (2 * (math.pi / orientations) ** 2)))
    return torch.stack(bank)


def gist(gray: Tensor) -> Tensor:
    """N×512 GIST of N×SIDE×SIDE grey images in [0, 1] (locally contrast-normalised first)."""
    x = gray - F.avg_pool2d(gray[:, None], 9, 1, 4, count_include_pad=False)[:, 0]
    local = F.avg_pool2d(x[:, None] ** 2, 9, 1, 4, count_include_pad=False)[:, 0].sqrt()
    x = x / (0.2 + local)
    spectrum = torch.fft.fft2(x)[:, None]
    energy = torch.fft.ifft2(spectrum * gabor_bank(gray.shape[-1])).abs()
    return F.adaptive_avg_pool2d(energy, GRID).flatten(1)


def hog_descriptor(gray: np.ndarray) -> np.ndarray:
    """HOG of one SIDE×SIDE grey image: 9 orientations, 16-px cells, 2×2-cell blocks."""
    return hog(gray, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2), feature_vector=True)


def describe(images: Sequence[np.ndarray]) -> Tensor:
    """N×(512+1764) scene descriptors of H×W×3 RGB or H×W grey images in [0, 1] (any sizes)."""
    grays = [np.asarray(im, np.float32) for im in images]
    grays = [cv2.resize(g if g.ndim == 2 else cv2.cvtColor(g, cv2.COLOR_RGB2GRAY), (SIDE, SIDE),
                        interpolation=cv2.INTER_AREA) for g in grays]
    g = F.normalize(gist(torch.from_numpy(np.stack(grays))), dim=1)
    h = F.normalize(torch.from_numpy(np.stack([hog_descriptor(x) for x in grays])).float(), dim=1)
    return torch.cat([g, h], dim=1) / math.sqrt(2)


def nearest(query: Tensor, pool: Tensor, k: int, exclude: Sequence[int] | None = None) -> Tensor:
    """Indices of the k pool descriptors nearest each query (Euclidean), best first.

    `exclude[i]` (≥ 0) is a pool index query i may not retrieve: itself, when the query is in the pool.
    """
    distance = torch.cdist(query.float(), pool.float())
    if exclude is not None:
        rows = torch.arange(len(query))
        own = torch.as_tensor(exclude)
        keep = own >= 0
        distance[rows[keep], own[keep]] = float("inf")
    k = min(k, pool.shape[0] - (1 if exclude is not None else 0))
    return distance.topk(k, dim=1, largest=False).indices
