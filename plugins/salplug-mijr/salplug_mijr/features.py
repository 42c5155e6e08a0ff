"""Stage 3: deep features of instances — a superpixel's box and its surroundings, two scales.

The paper takes VGG16 fc features (4 × 4096 per pair) of crops; VGG16 weights are not
available offline, so a registry backbone's last three levels (strides 8, 16, 32) are
brought to stride 4 and averaged over each box with an integral image: one backbone pass
per image, every box at once.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import salplug

LEVELS = 3
STRIDE = 4


class Encoder(nn.Module):
    """A frozen registry backbone whose deepest `LEVELS` maps are concatenated at stride 4."""

    def __init__(self, backbone: str, weights: str | None):
        super().__init__()
        self.backbone = salplug.build("backbone", backbone, weights=weights, frozen=True)

    @property
    def channels(self) -> int:
        return sum(self.backbone.channels[-LEVELS:])

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """B×C×H/4×W/4 feature maps of B×3×H×W contract images."""
        size = (images.shape[-2] // STRIDE, images.shape[-1] // STRIDE)
        levels = self.backbone(images)[-LEVELS:]
        return torch.cat([F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in levels], 1)


def box_means(fmap: Tensor, boxes: np.ndarray) -> Tensor:
    """k×C mean of a C×h×w map over k pixel boxes (y0, x0, y1, x1) of the full-resolution image."""
    c, h, w = fmap.shape
    integral = F.pad(fmap.double().cumsum(1).cumsum(2), (1, 0, 1, 0))
    b = torch.as_tensor(boxes, dtype=torch.long)
    y0 = (b[:, 0] // STRIDE).clamp(0, h - 1)
    x0 = (b[:, 1] // STRIDE).clamp(0, w - 1)
    y1 = torch.maximum((b[:, 2] + STRIDE - 1) // STRIDE, y0 + 1).clamp(max=h)
    x1 = torch.maximum((b[:, 3] + STRIDE - 1) // STRIDE, x0 + 1).clamp(max=w)
    total = integral[:, y1, x1] - integral[:, y0, x1] - integral[:, y1, x0] + integral[:, y0, x0]
    return (total / ((y1 - y0) * (x1 - x0))).T.float()


def surroundings(boxes: np.ndarray, factor: float, height: int, width: int) -> np.ndarray:
    """Boxes grown `factor` times about their centres, clipped to the image."""
    cy, cx = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    hh = (boxes[:, 2] - boxes[:, 0]) * factor / 2
    hw = (boxes[:, 3] - boxes[:, 1]) * factor / 2
    grown = np.stack([cy - hh, cx - hw, cy + hh, cx + hw], 1).round().astype(np.int64)
    return np.clip(grown, 0, [height, width, height, width])


def instance_features(fmap: Tensor, box: np.ndarray, factor: float, height: int, width: int) -> Tensor:
    """n×2C: each superpixel's box and its `factor`-times larger surroundings."""
    return torch.cat([box_means(fmap, box), box_means(fmap, surroundings(box, factor, height, width))], 1)
