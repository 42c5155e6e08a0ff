"""Stage 2 (`a2s`): the self-rectifying detector trained on stage-1 pseudo labels.

All five encoder levels are reduced to `channels` (3×3 conv, GroupNorm, ReLU) giving
H1..H5. Two residual attention modules (RAM) gate two levels each by their difference
from the global level: H′_i = H_i ⊙ σ(conv(H_i − H5)), then fuse [H′_a, H′_b, H5]. The
region module R_r takes (H3, H4, H5), the local module R_l (H1, H2, H5 upsampled ×4 by a
small decoder); the output logit is Y = Σ_channels(R_l ⊙ R_r), as in the authors' code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from salplug.models import EncoderDecoderPrior

from .common import PriorConfig, up

SHIPPED_FILE = "a2s-efficientnet-lite0.pt"
DEFAULTS = {"backbone": "mobilenetv2_100", "size": 320, "channels": 64}


def cgr(cin: int, cout: int) -> nn.Sequential:
    """3×3 conv, GroupNorm(cout/2 groups), ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(max(1, cout // 2), cout), nn.ReLU(inplace=True))


class RAM(nn.Module):
    """Residual attention module over two levels (a finer, b coarser) and a global map g."""

    def __init__(self, channels: int):
        super().__init__()
        self.gconv = cgr(channels, channels)
        self.res_a = nn.Conv2d(channels, channels, 3, padding=1)
        self.res_b = nn.Conv2d(channels, channels, 3, padding=1)
        self.fuse = nn.Conv2d(channels * 3, channels, 3, padding=1)

    def forward(self, a: Tensor, b: Tensor, g: Tensor) -> Tensor:
        size = tuple(a.shape[-2:])
        g = up(self.gconv(g), size)
        b = up(b, size)
        a = a * torch.sigmoid(self.res_a(a - g))
        b = b * torch.sigmoid(self.res_b(b - g))
        return self.fuse(torch.cat([a, b, g], dim=1))


class GlobalUp(nn.Module):
    """H5 to the local module's input: conv to 2C, GN, ReLU, ×2, conv to C, GN, ReLU, ×2."""

    def __init__(self, channels: int):
        super().__init__()
        self.a, self.b = cgr(channels, channels * 2), cgr(channels * 2, channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.a(x)
        x = up(x, (x.shape[-2] * 2, x.shape[-1] * 2))
        x = self.b(x)
        return up(x, (x.shape[-2] * 2, x.shape[-1] * 2))


class Stage2Decoder(nn.Module):
    def __init__(self, in_channels: Sequence[int], channels: int = 64):
        super().__init__()
        if len(in_channels) != 5:
            raise ValueError(f"a2s: expected an encoder with 5 levels, got {len(in_channels)}")
        self.adapters = nn.ModuleList([cgr(c, channels) for c in in_channels])
        self.region = RAM(channels)
        self.local = RAM(channels)
        self.global_up = GlobalUp(channels)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        h1, h2, h3, h4, h5 = [a(f) for a, f in zip(self.adapters, features)]
        region = self.region(h3, h4, h5)
        local = self.local(h1, h2, self.global_up(h5))
        return (local * up(region, tuple(local.shape[-2:]))).sum(dim=1, keepdim=True)


class A2S(EncoderDecoderPrior):
    """A2S stage 2: σ of a fine-tuned encoder + RAM decoder's logit map (stored in fp16, about 7 MB)."""

    name = "a2s"
    example_config = {"checkpoint": None, "backbone_weights": None, "size": 64, "channels": 8}

    Config = PriorConfig
    shipped = SHIPPED_FILE
    defaults = DEFAULTS

    def make_decoder(self, in_channels: Sequence[int], channels: int) -> Stage2Decoder:
        return Stage2Decoder(in_channels, channels)
