"""Stage 2, alignment: dense SIFT correspondences, superpixel distances (Eq. 2), proposal similarity (Eq. 3)
and the alternating top-K assignment of proposals (Eq. 1).

SIFT-Flow is not available offline; its stand-in keeps its three terms. Data term: distance
of dense SIFT descriptors (4×4 cells of 8-bin gradient histograms, L2-normalised, clipped at
0.2, renormalised) on a grid of `step` pixels. Smoothness term: neighbouring grid points are
pushed to the same displacement by aggregating the cost over a 3×3 window of points moved
together (as local stereo matching does). Small-displacement term: `lam` × displacement as a
share of the image side. Every target point takes its cheapest point of the other image.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

BINS = 8


def dense_sift(gray: Tensor, step: int = 4) -> Tensor:
    """128×h×w descriptors (h = H / step) of an H×W grey image; each covers 4×4 cells of `step` px."""
    x = gray[None, None].float()
    gy = F.pad(x[..., 2:, :] - x[..., :-2, :], (0, 0, 1, 1), mode="replicate")
    gx = F.pad(x[..., :, 2:] - x[..., :, :-2], (1, 1, 0, 0), mode="replicate")
    magnitude = torch.sqrt(gx**2 + gy**2)
    angle = torch.remainder(torch.atan2(gy, gx), 2 * math.pi) / (2 * math.pi) * BINS
    low = angle.floor()
    share = angle - low
    histogram = torch.zeros(1, BINS, *gray.shape)
    histogram.scatter_add_(1, low.long() % BINS, magnitude * (1 - share))
    histogram.scatter_add_(1, (low.long() + 1) % BINS, magnitude * share)
    cells = F.avg_pool2d(histogram, step)
    blocks = F.unfold(F.pad(cells, (2, 1, 2, 1), mode="replicate"), 4)  # 4×4 cells around each grid point
    d = F.normalize(blocks[0], dim=0).clamp_max(0.2)
    return F.normalize(d, dim=0).view(BINS * 16, *cells.shape[-2:])


def match(target: Tensor, other: Tensor, lam: float = 0.5) -> tuple[Tensor, Tensor]:
    """For each target grid point (row-major), its matched point in `other` and the match cost (data term)."""
    _, h, w = target.shape
    _, h2, w2 = other.shape
    cost = torch.cdist(target.flatten(1).T[None], other.flatten(1).T[None])[0].view(h, w, h2, w2)
    total = torch.zeros_like(cost)
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            ty, tx = slice(max(-oy, 0), h - max(oy, 0)), slice(max(-ox, 0), w - max(ox, 0))
            sy, sx = slice(max(oy, 0), h + min(oy, 0)), slice(max(ox, 0), w + min(ox, 0))
            ry, rx = slice(max(-oy, 0), h2 - max(oy, 0)), slice(max(-ox, 0), w2 - max(ox, 0))
            qy, qx = slice(max(oy, 0), h2 + min(oy, 0)), slice(max(ox, 0), w2 + min(ox, 0))
            total[ty, tx, ry, rx] += cost[sy, sx, qy, qx]
    count = _window_count(h, h2)[:, None, :, None] * _window_count(w, w2)[None, :, None, :]
    yy = torch.arange(h, dtype=torch.float32)[:, None, None, None] / h
    xx = torch.arange(w, dtype=torch.float32)[None, :, None, None] / w
    y2 = torch.arange(h2, dtype=torch.float32)[None, None, :, None] / h2
    x2 = torch.arange(w2, dtype=torch.float32)[None, None, None, :] / w2
    energy = total / count + lam * torch.sqrt((yy - y2) ** 2 + (xx - x2) ** 2)
    best = energy.view(h * w, h2 * w2).argmin(1)
    return best, cost.view(h * w, h2 * w2).gather(1, best[:, None])[:, 0]


def _window_count(n: int, n2: int) -> Tensor:
    """n×n2: how many of the offsets −1, 0, 1 keep both index a < n and index b < n2 in range."""
    a, b = torch.arange(n)[:, None], torch.arange(n2)[None, :]
    return sum(((a + o >= 0) & (a + o < n) & (b + o >= 0) & (b + o < n2)).float() for o in (-1, 0, 1))


def grid_labels(labels: np.ndarray, step: int) -> np.ndarray:
    """Superpixel label at the centre of each grid cell, row-major."""
    c = step // 2
    return labels[c::step, c::step].ravel()


def correspondence(target_cells: np.ndarray, other_cells: np.ndarray, best: Tensor, cost: Tensor,
                   n: int, m: int, sigma: float = 0.5) -> np.ndarray:
    """n×m correspondence strength: per target superpixel i, the share of its grid points matched into
    superpixel j of the other image, each point weighted by exp(−cost / σ). Eq. 2's distance is 1 − this."""
    weight = torch.exp(-cost / sigma).numpy().astype(np.float64)
    j = other_cells[best.numpy()]
    strength = np.bincount(target_cells * m + j, weight, n * m).reshape(n, m)
    points = np.bincount(target_cells, minlength=n).astype(np.float64)
    return strength / np.maximum(points, 1)[:, None]


def proposal_similarity(members_t: np.ndarray, members_o: np.ndarray, strength: np.ndarray,
                        area_t: np.ndarray, area_o: np.ndarray) -> np.ndarray:
    """Eq. 3 (V×V'): area of P carried into Q by the correspondences, over |P| + |Q| − that area (an IoU)."""
    carried = (members_t * area_t).astype(np.float64) @ strength @ members_o.T.astype(np.float64)
    size_t = members_t @ area_t
    size_o = members_o @ area_o
    return carried / (size_t[:, None] + size_o[None, :] - carried)


def alternating_topk(similarity: np.ndarray, k: int = 10) -> np.ndarray:
    """Eq. 1: proposal pairs (row, column) kept by alternating top-K rounds, K = k, k−1, …, 1.

    Each round keeps, among the surviving candidates, the K best columns of every row, then
    the K best rows of every column; the last round (K = 1) leaves mutual best matches.
    """
    g = torch.as_tensor(similarity, dtype=torch.float64)
    alive = g > 0
    for size in range(k, 0, -1):
        for dim in (1, 0):
            masked = torch.where(alive, g, torch.tensor(-1.0, dtype=g.dtype))
            top = masked.topk(min(size, masked.shape[dim]), dim=dim).indices
            keep = torch.zeros_like(alive).scatter_(dim, top, True)
            alive &= keep
    return alive.nonzero().numpy()
