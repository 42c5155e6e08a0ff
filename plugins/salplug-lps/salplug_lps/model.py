"""The LPS network: a backbone trunk, the pixel embedding φ and the region embedding ψ.

The trunk brings the backbone's five levels to one grid (the working size divided by
`stride`): a level coarser than the grid goes through a sub-pixel convolution (1×1 conv to
C·r² channels, pixel shuffle by r = level stride / grid stride), a finer one is
average-pooled down and projected to C. The concatenation (5C channels) feeds both
embeddings, so the pixels and the regions they are compared with share one trunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

import salplug
from salplug.ops import resize

from .anchors import foreground_logit, iterate, region_weights, soft_average, soft_anchors


def level_adapter(cin: int, level_stride: int, stride: int, channels: int) -> nn.Sequential:
    """One level to `channels` maps on the grid of `stride`: sub-pixel upsampling, or pooling for finer levels."""
    if level_stride >= stride:
        r = level_stride // stride
        return nn.Sequential(nn.Conv2d(cin, channels * r * r, 1), nn.PixelShuffle(r), nn.ReLU(inplace=True))
    return nn.Sequential(nn.AvgPool2d(stride // level_stride), nn.Conv2d(cin, channels, 1), nn.ReLU(inplace=True))


def embedding_head(cin: int, dim: int) -> nn.Sequential:
    """The two conv layers of an embedding: 1×1 to D (+ReLU), then 3×3 D→D, linear so anchors may lie anywhere."""
    return nn.Sequential(nn.Conv2d(cin, dim, 1), nn.ReLU(inplace=True), nn.Conv2d(dim, dim, 3, padding=1))


class Trunk(nn.Module):
    """Backbone levels fused on one grid: ``B×5C×(H/stride)×(W/stride)``."""

    def __init__(self, level_channels: Sequence[int], level_strides: Sequence[int], channels: int, stride: int):
        super().__init__()
        bad = [s for s in level_strides if max(s, stride) % min(s, stride)]
        if bad:
            raise ValueError(f"expected level strides that divide or are multiples of {stride}, got {list(level_strides)}")
        self.adapters = nn.ModuleList(
            level_adapter(c, s, stride, channels) for c, s in zip(level_channels, level_strides)
        )
        self.out_channels = channels * len(self.adapters)

    def forward(self, levels: Sequence[Tensor]) -> Tensor:
        return torch.cat([adapter(level) for adapter, level in zip(self.adapters, levels)], dim=1)


class RegionEmbedding(nn.Module):
    """ψ: a region's embedding from trunk features and soft region weights.

    ``conv``: conv layers on every pixel, then the weighted average over the region;
    ``fc``: the weighted average of the trunk features, then fully connected layers.
    """

    def __init__(self, variant: str, cin: int, dim: int):
        super().__init__()
        self.variant = variant
        if variant == "conv":
            self.layers = embedding_head(cin, dim)
        elif variant == "fc":
            self.layers = nn.Sequential(nn.Linear(cin, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        else:
            raise ValueError(f"expected region variant 'conv' or 'fc', got {variant!r}")

    def features(self, trunk: Tensor) -> Tensor:
        """The per-pixel part, computed once per image however many times anchors are taken."""
        return self.layers(trunk) if self.variant == "conv" else trunk

    def anchors(self, features: Tensor, weights: Tensor) -> Tensor:
        """μ_fg, μ_bg (``B×2×D``) for weights w (foreground) and 1 − w (background) on the grid."""
        if self.variant == "conv":
            return soft_anchors(features, weights)
        return self.layers(soft_average(features, region_weights(weights)))


class LPSNet(nn.Module):
    """Backbone → trunk → (φ, ψ); scores pixels by their distance to the two region anchors."""

    def __init__(
        self, backbone: str, backbone_weights: str | None, channels: int, dim: int, region: str, stride: int
    ):
        super().__init__()
        self.backbone = salplug.build("backbone", backbone, weights=backbone_weights, frozen=False)
        self.trunk = Trunk(self.backbone.channels, self.backbone.strides, channels, stride)
        self.pixel = embedding_head(self.trunk.out_channels, dim)
        self.region = RegionEmbedding(region, self.trunk.out_channels, dim)
        self.eval()

    def train(self, mode: bool = True):
        """Backbone batch-norm statistics stay frozen: training batches are too small to re-estimate them."""
        super().train(mode)
        self.backbone.eval()
        return self

    def embed(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Pixel embeddings φ (``B×D×h×w``) and ψ's per-pixel features, on the grid."""
        trunk = self.trunk(self.backbone(image))
        return self.pixel(trunk), self.region.features(trunk)

    def forward(self, image: Tensor, weights: Tensor) -> Tensor:
        """Foreground logits d_bg − d_fg on the grid, anchors from `weights` (any size, resized to the grid)."""
        pixel, region = self.embed(image)
        grid = resize(weights, tuple(pixel.shape[-2:]))
        return foreground_logit(pixel, self.region.anchors(region, grid))

    def refine(self, image: Tensor, prior: Tensor, iterations: int, average: bool = True) -> Tensor:
        """Y(T) on the grid: the features once, then T rounds of anchors from Y(t) and the running mean."""
        pixel, region = self.embed(image)
        start = resize(prior, tuple(pixel.shape[-2:])).clamp(0, 1)

        def step(y: Tensor) -> Tensor:
            return torch.sigmoid(foreground_logit(pixel, self.region.anchors(region, y)))

        return iterate(step, start, iterations, average)
