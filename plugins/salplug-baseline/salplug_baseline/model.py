"""The decoder: a feature pyramid over the encoder's five levels, read out at stride 2.

Each level is reduced by a 1×1 conv to its width (`channels` at strides 8-32, half at
stride 4, a quarter at stride 2, so the fine levels stay cheap on a CPU). From the
deepest level down, the coarser result is projected to the next width, upsampled, added
to that level's lateral and mixed by a 3×3 conv with GroupNorm and ReLU (GroupNorm
because CPU batches are small). A 1×1 conv gives one logit per pixel of the finest level.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


def conv_gn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(4, cout), nn.ReLU(inplace=True))


class PyramidDecoder(nn.Module):
    def __init__(self, in_channels: Sequence[int], channels: int = 64):
        super().__init__()
        fine = [max(8, channels // 4), max(8, channels // 2)]
        widths = (fine + [channels] * len(in_channels))[: len(in_channels)]
        self.lateral = nn.ModuleList([nn.Conv2d(c, w, 1) for c, w in zip(in_channels, widths)])
        self.project = nn.ModuleList([nn.Conv2d(widths[i + 1], widths[i], 1) for i in range(len(widths) - 1)])
        self.mix = nn.ModuleList([conv_gn_relu(w, w) for w in widths])
        self.head = nn.Conv2d(widths[0], 1, 1)

    @property
    def widths(self) -> list[int]:
        """Channels of each level's mixed map, shallow to deep."""
        return [m[0].out_channels for m in self.mix]

    def levels(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Each level's mixed map (shallow to deep): deep context carried down to every stride."""
        x, mixed = None, []
        for level in reversed(range(len(features))):
            lateral = self.lateral[level](features[level])
            if x is not None:
                x = F.interpolate(self.project[level](x), size=lateral.shape[-2:], mode="bilinear", align_corners=False)
                lateral = lateral + x
            x = self.mix[level](lateral)
            mixed.append(x)
        return mixed[::-1]

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return self.head(self.levels(features)[0])
