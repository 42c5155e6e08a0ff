"""Small pieces both stages share: the priors' config fields, resizing, the conv block."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from salplug.components import SHIPPED, ComponentConfig, checkpoint_file

BACKBONES = ("mobilenetv2_100", "tf_efficientnet_lite0")


class PriorConfig(ComponentConfig):
    """Config fields of both A2S priors; architecture fields left at None follow the checkpoint."""

    checkpoint: str | None = Field(
        default=SHIPPED,
        description="Weights: 'shipped' (installed with the package), a path, or None (untrained new blocks: tests/training).",
    )
    backbone: Literal[BACKBONES] | None = Field(
        default=None, description="Encoder (None: the checkpoint's, else mobilenetv2_100)."
    )
    backbone_weights: str | None = Field(default="imagenet", description="Encoder weight tag (None: random, for tests).")
    size: int | None = Field(
        default=None, ge=32, description="Working size, images resized to size×size and back (None: checkpoint's, else 320)."
    )
    channels: int | None = Field(
        default=None, ge=2, description="Width of the head or decoder blocks (None: checkpoint's, else 64)."
    )
    seed: int = Field(default=0, description="Seed of the random initialisation of the new blocks.")


def resolve_checkpoint(value: str, filename: str) -> Path:
    """The file a stage's ``checkpoint`` value names, `filename` being its shipped one."""
    return checkpoint_file(value, "salplug_a2s", filename, owner="a2s")


def up(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Plain bilinear upsampling of feature maps to `size`."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def conv_norm_relu(cin: int, cout: int, groups: int = 1) -> nn.Sequential:
    """3×3 conv, GroupNorm(`groups`), ReLU: the adapter block of the A2S code."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(groups, cout), nn.ReLU(inplace=True))
