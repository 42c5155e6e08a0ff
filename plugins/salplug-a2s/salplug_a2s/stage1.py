"""Stage 1 (`a2s-stage1`): saliency cues from a frozen encoder's activations.

The three deepest levels of a frozen ImageNet encoder each pass an adapter (3×3 conv to
`channels`, GroupNorm, ReLU) and a squeeze-excitation block; they are upsampled to stride
`fuse_stride`, concatenated and fused by another adapter + SE block into F. The activation
map is M = Σ_c (F − mean over pixels of F): each pixel's decision value. Where more than
half the pixels are positive the map is inverted (the larger region is background).
By default the prior returns stage 1's product, the pseudo label σ(M) → DenseCRF → 7×7
median that stage 2 trains on; `output: activation` returns σ(M) alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

import salplug
from salplug.components import Learned, PriorProvider, seeded
from salplug.ops import resize

from .common import PriorConfig, conv_norm_relu, up
from .pseudo_labels import refine

SHIPPED_FILE = "a2s-stage1-efficientnet-lite0.pt"
DEFAULTS = {"backbone": "mobilenetv2_100", "size": 320, "channels": 64, "fuse_stride": 2}
DEEPEST = (2, 3, 4)  # backbone levels at strides 8, 16, 32


class SqueezeExcite(nn.Module):
    """Channel gate σ(conv1×1(global average)) times the input (the A2S SE block)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.conv(x.mean(dim=(2, 3), keepdim=True)))


class AdapterSE(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(conv_norm_relu(cin, cout), SqueezeExcite(cout))


def centred_sum(x: Tensor) -> Tensor:
    """Σ over channels of (x − per-channel mean over pixels): B×C×h×w -> B×1×h×w decision values."""
    return (x - x.mean(dim=(2, 3), keepdim=True)).sum(dim=1, keepdim=True)


def foreground_sign(theta: Tensor) -> Tensor:
    """−1 for maps with more than half of their pixels positive, else +1 (B×1×1×1)."""
    positive = (theta > 0).float().mean(dim=(1, 2, 3))
    return torch.where(positive > 0.5, -1.0, 1.0).to(theta).view(-1, 1, 1, 1)


class Stage1Head(nn.Module):
    """Adapters + SE per level, fusion + SE; returns the fused decision map and each level's."""

    def __init__(self, in_channels: Sequence[int], channels: int = 64):
        super().__init__()
        self.adapters = nn.ModuleList([AdapterSE(c, channels) for c in in_channels])
        self.fusion = AdapterSE(channels * len(in_channels), channels)

    def forward(self, features: Sequence[Tensor], size: tuple[int, int]) -> tuple[Tensor, list[Tensor]]:
        adapted = [a(f) for a, f in zip(self.adapters, features)]
        fused = self.fusion(torch.cat([up(a, size) for a in adapted], dim=1))
        return centred_sum(fused), [centred_sum(a) for a in adapted]


class A2SStage1(Learned, PriorProvider):
    """A2S stage 1: σ of the sign-corrected activation map of a frozen encoder + trained head."""

    name = "a2s-stage1"
    example_config = {"checkpoint": None, "backbone_weights": None, "size": 64, "channels": 8}
    checkpoint_skip = ("backbone.",)  # checkpoints hold the head only: the frozen encoder comes from its weight tag
    shipped = SHIPPED_FILE
    defaults = DEFAULTS
    frozen = ("backbone",)

    class Config(PriorConfig):
        fuse_stride: int | None = Field(
            default=None, ge=1, description="Stride at which levels are fused (None: checkpoint's, else 2 as in the paper)."
        )
        output: Literal["activation", "pseudo-label"] = Field(
            default="pseudo-label",
            description="'pseudo-label': σ(M) -> DenseCRF -> 7×7 median, stage 1's product (the stage-2 labels); "
            "'activation': σ(M) alone.",
        )

    def build(self, arch: dict[str, Any]) -> None:
        self.backbone = salplug.build(
            "backbone", arch["backbone"], weights=self.config.backbone_weights, frozen=True, out_indices=DEEPEST
        )
        with seeded(self.config.seed):
            self.head = Stage1Head(self.backbone.channels, arch["channels"])

    def fuse_size(self, height: int, width: int) -> tuple[int, int]:
        s = self.arch["fuse_stride"]
        return (max(1, height // s), max(1, width // s))

    def decision(self, features: Sequence[Tensor], height: int, width: int) -> tuple[Tensor, list[Tensor]]:
        """Fused and per-level decision values from the deepest features (no sign correction)."""
        return self.head(features, self.fuse_size(height, width))

    def activation(self, image: Tensor) -> Tensor:
        """Sign-corrected M at the fuse resolution for images already at the working size."""
        theta, _ = self.decision(self.backbone(image), *image.shape[-2:])
        return theta * foreground_sign(theta)

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        height, width = image.shape[-2:]
        x = resize(image, self.arch["size"])
        prob = torch.sigmoid(up(self.activation(x), tuple(x.shape[-2:])))
        if self.config.output == "pseudo-label":
            prob = refine(x, prob)
        return up(prob, (height, width)).clamp(0, 1)
