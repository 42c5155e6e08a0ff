"""Stage 2 for one (target, retrieved) pair: proposal pairs (Eq. 1-3), superpixel partners, pair features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .analysis import Record
from .matching import (
    alternating_topk,
    correspondence,
    dense_sift,
    grid_labels,
    match,
    proposal_similarity,
)
from .pseudo import IGNORED


@dataclass
class Alignment:
    pairs: np.ndarray  # K×2: (target proposal, retrieved proposal)
    similarity: np.ndarray  # K: g of each pair (Eq. 3)
    partners: np.ndarray  # K×n: retrieved superpixel aligned to each target superpixel inside the pair's proposals, −1 none


def align(target: Record, other: Record, *, step: int, lam: float, sigma: float, top_k: int) -> Alignment:
    """Bi-level alignment: proposals by Eq. 1 on Eq. 3's similarity, then superpixels inside aligned proposals."""
    t, o = target.regions, other.regions
    best, cost = match(dense_sift(torch.from_numpy(target.gray), step), dense_sift(torch.from_numpy(other.gray), step), lam)
    strength = correspondence(grid_labels(t.labels, step), grid_labels(o.labels, step), best, cost, t.count, o.count, sigma)
    g = proposal_similarity(t.members, o.members, strength, t.area, o.area)
    pairs = alternating_topk(g, top_k)
    inside = torch.from_numpy(strength)[None] * torch.from_numpy(o.members[pairs[:, 1]])[:, None, :]
    value, index = inside.max(2)
    valid = (value > 0) & torch.from_numpy(t.members[pairs[:, 0]])
    partners = torch.where(valid, index, torch.tensor(-1)).numpy()
    return Alignment(pairs, g[pairs[:, 0], pairs[:, 1]], partners)


def region_cues(record: Record, members: np.ndarray) -> np.ndarray:
    """k×3 per region: mean base-map value, share of pseudo-labelled-ignored area, share of the image."""
    r = record.regions
    weights = members * r.area
    size = weights.sum(1)
    base = weights @ record.base / size
    ignored = weights @ (record.pgt == IGNORED) / size
    return np.stack([base, ignored, size / r.area.sum()], 1)


def pair_features(target: Record, other: Record, al: Alignment) -> Tensor:
    """K×(2F + 7): both proposal instances, g, and each side's region cues (the filter's input)."""
    p, q = al.pairs[:, 0], al.pairs[:, 1]
    cues = np.concatenate([al.similarity[:, None], region_cues(target, target.regions.members[p]),
                           region_cues(other, other.regions.members[q])], 1)
    return torch.cat([target.proposal_features[p], other.proposal_features[q], torch.from_numpy(cues).float()], 1)


def aligned_instances(labels: np.ndarray, al: Alignment, keep: np.ndarray) -> np.ndarray:
    """Retrieved superpixels aligned inside the kept proposal pairs that carry a label (`labels` per superpixel)."""
    chosen = np.unique(al.partners[keep])
    chosen = chosen[chosen >= 0]
    return chosen[labels[chosen] != IGNORED]
