"""Stage 5: the instance-pair filter — which aligned pairs are likely to help.

Labels follow the paper's Table I. A target instance is *hard* when its pseudo ground truth
disagrees with the truth (IoU(pGT, GT) ≤ 15 %); an aligned instance is *consistent* when its
pseudo ground truth agrees with its truth (IoU > 90 %). A pair helps when its aligned side is
consistent: re-learning takes the aligned side's pseudo labels as training labels, so only a
consistent side teaches the right thing. Hard targets are what the method exists for, so
their pairs weigh `hard_weight` times more in the filter's loss. Pairs whose aligned side is
neither consistent nor clearly wrong (15 % < IoU ≤ 90 %) are left out of training.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salplug.components import seeded

HARD = 0.15
CONSISTENT = 0.90


def region_iou(members: np.ndarray, inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """IoU(pGT, GT) over each region (rows of `members`) from per-superpixel intersection and union pixels.

    A region where neither pGT nor GT has foreground agrees perfectly: IoU 1.
    """
    i = members @ inter
    u = members @ union
    return np.where(u > 0, i / np.maximum(u, 1e-9), 1.0)


def table_one(iou_target: np.ndarray, iou_aligned: np.ndarray, hard_weight: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Filter labels (1 helps, 0 does not) and loss weights of pairs; weight 0 leaves a pair out."""
    consistent = iou_aligned > CONSISTENT
    wrong = iou_aligned <= HARD
    label = consistent.astype(np.float32)
    weight = np.where(consistent | wrong, 1.0, 0.0) * np.where(iou_target <= HARD, hard_weight, 1.0)
    return label, weight.astype(np.float32)


class PairFilter(nn.Module):
    """A small FC classifier of pair features: standardise, one hidden layer, helpfulness logit."""

    def __init__(self, features: int, hidden: int = 64):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Probability that each pair (row of x) helps."""
        return torch.sigmoid(self.net((x - self.mean) / self.std)[:, 0])

    def fit(self, x: Tensor, label: Tensor, weight: Tensor, epochs: int = 300, lr: float = 1e-3,
            weight_decay: float = 1e-3, seed: int = 0) -> list[float]:
        """Full-batch Adam on the weighted, class-balanced BCE from a fresh `seed`-ed initialisation; returns the loss per epoch.

        The seed governs initialisation and dropout without touching the caller's random state.
        """
        with seeded(seed):
            for layer in self.net:
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
            return self._train(x, label, weight, epochs, lr, weight_decay)

    def _train(self, x: Tensor, label: Tensor, weight: Tensor, epochs: int, lr: float, weight_decay: float) -> list[float]:
        keep = weight > 0
        x, label, weight = x[keep].float(), label[keep].float(), weight[keep].float()
        if len(x) == 0 or label.min() == label.max():
            raise ValueError(f"pair filter: expected pairs of both labels, got {len(x)} pairs with labels "
                             f"{sorted(set(label.tolist()))}")
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(1e-6))
        positive = float((label * weight).sum() / weight.sum())
        balance = torch.where(label > 0.5, 0.5 / positive, 0.5 / (1 - positive)) * weight
        optim = torch.optim.Adam(self.net.parameters(), lr=lr, weight_decay=weight_decay)
        history = []
        self.train()
        z = (x - self.mean) / self.std
        for _ in range(epochs):
            loss = (F.binary_cross_entropy_with_logits(self.net(z)[:, 0], label, reduction="none") * balance).mean()
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            history.append(float(loss.detach()))
        self.eval()
        return history
