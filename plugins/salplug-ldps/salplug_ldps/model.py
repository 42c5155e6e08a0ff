"""The LDPS network: a split MobileNetV2 encoder, ASPP fusion, two residual transforms, a pair discriminator.

The encoder runs timm's ``mobilenetv2_100`` (the salplug backbone, ImageNet weights from
its weight tag) stage by stage so it can return torchvision's ``features[0, 3, 13, 17]``
(the stem output is not a timm ``features_only`` level). It is split in two:

* ``fixed``: conv stem and blocks 0-2 (stride 2 to 8): never trained, always the weight
  tag's ImageNet weights, so a checkpoint does not store them;
* ``tuned``: blocks 3-6 (stride 16 and 32, 1.76 M parameters): fine-tuned with the head.

Batch-norm statistics of the whole encoder stay frozen (eval mode): batches of 8 CPU
images are too small to re-estimate them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salplug.builtins.backbones import MobileNetV2

from .relations import foreground_anchor

ENCODER_CHANNELS = (32, 24, 96, 320)  # torchvision features[0], [3], [13], [17]


class Encoder(nn.Module):
    """MobileNetV2 returning the stride-2/4/16/32 maps LDPS fuses; it normalises [0, 1] images itself."""

    def __init__(self, weights: str | None = "imagenet"):
        super().__init__()
        backbone = MobileNetV2(weights=weights, frozen=False)
        model = backbone.model
        blocks = list(model.blocks)
        self.fixed = nn.ModuleList([nn.Sequential(model.conv_stem, model.bn1), *blocks[:3]])
        self.tuned = nn.ModuleList(blocks[3:])
        self.register_buffer("mean", backbone.mean.clone(), persistent=False)
        self.register_buffer("std", backbone.std.clone(), persistent=False)
        self.fixed.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        """Batch-norm statistics stay frozen: the encoder is always in eval mode (weights still train)."""
        return super().train(False)

    def low(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The fixed part: stem (32ch /2), block 1 (24ch /4) and block 2 (32ch /8) outputs."""
        x = (image - self.mean) / self.std
        stem = self.fixed[0](x)
        x4 = self.fixed[2](self.fixed[1](stem))
        x8 = self.fixed[3](x4)
        return stem, x4, x8

    def high(self, x8: Tensor) -> tuple[Tensor, Tensor]:
        """The tuned part: block 4 (96ch /16) and block 6 (320ch /32) outputs."""
        x16 = self.tuned[1](self.tuned[0](x8))
        x32 = self.tuned[3](self.tuned[2](x16))
        return x16, x32


def conv_bn_prelu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.PReLU(cout),
    )


class ASPP(nn.Module):
    """1×1 reduction, then 1×1 and 3×3 dilation 6/12/18 branches (BN + PReLU), projected to `out` channels."""

    def __init__(self, cin: int, mid: int = 64, out: int = 32, rates: tuple[int, ...] = (6, 12, 18)):
        super().__init__()
        self.reduce = conv_bn_prelu(cin, mid)
        self.branches = nn.ModuleList([conv_bn_prelu(mid, out)] + [conv_bn_prelu(mid, out, 3, r) for r in rates])
        self.project = conv_bn_prelu(out * (1 + len(rates)), out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduce(x)
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_prelu(channels, channels, 3),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.act = nn.PReLU(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.body(x))


def transform(channels: int, blocks: int = 3) -> nn.Sequential:
    return nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])


class Discriminator(nn.Module):
    """Scores pairs ``[F_fg, f_i]`` per pixel with 1×1 convolutions; returns logits ``B×1×H×W``."""

    def __init__(self, channels: int = 32):
        super().__init__()
        self.body = nn.Sequential(conv_bn_prelu(2 * channels, channels), conv_bn_prelu(channels, channels // 2))
        self.out = nn.Conv2d(channels // 2, 1, 1)

    def forward(self, anchor: Tensor, features: Tensor) -> Tensor:
        b, _, h, w = features.shape
        pairs = torch.cat([anchor[:, :, None, None].expand(b, anchor.shape[1], h, w), features], dim=1)
        return self.out(self.body(pairs))


class Head(nn.Module):
    """Everything after the encoder: fusion at stride 4, the two transforms and the discriminator."""

    def __init__(self, channels: int = 32):
        super().__init__()
        self.aspp = ASPP(sum(ENCODER_CHANNELS), out=channels)
        self.certain = transform(channels)
        self.all = transform(channels)
        self.discriminator = Discriminator(channels)

    def fuse(self, stem: Tensor, x4: Tensor, x16: Tensor, x32: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder maps to the stride-4 "certain" and "all" features."""
        size = x4.shape[-2:]
        levels = [F.adaptive_avg_pool2d(stem, size) if stem.shape[-2:] != size else stem, x4]
        levels += [F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in (x16, x32)]
        fused = self.aspp(torch.cat(levels, dim=1))
        return self.certain(fused), self.all(fused)


class LDPSNet(nn.Module):
    """Encoder + head. `forward(image, prior)` gives pair logits at the prior's size for every pixel."""

    def __init__(self, weights: str | None = "imagenet", channels: int = 32):
        super().__init__()
        self.encoder = Encoder(weights)
        self.head = Head(channels)

    def features(self, image: Tensor, low: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        stem, x4, x8 = low if low is not None else self.encoder.low(image)
        x16, x32 = self.encoder.high(x8)
        return self.head.fuse(stem, x4, x16, x32)

    def logits(self, certain: Tensor, every: Tensor, prior: Tensor, theta_fg: float, topk: float) -> Tensor:
        """Anchor from the "certain" features, pairs with the "all" features, both upsampled to the prior's size."""
        size = prior.shape[-2:]
        certain = F.interpolate(certain, size=size, mode="bilinear", align_corners=False)
        every = F.interpolate(every, size=size, mode="bilinear", align_corners=False)
        anchor = foreground_anchor(certain, prior, theta_fg, topk)
        return self.head.discriminator(anchor, every)

    def forward(self, image: Tensor, prior: Tensor, theta_fg: float = 0.9, topk: float = 0.05,
                low: tuple[Tensor, Tensor, Tensor] | None = None) -> Tensor:
        certain, every = self.features(image, low)
        return self.logits(certain, every, prior, theta_fg, topk)

    def trainable(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(encoder parameters to fine-tune, head parameters)."""
        return list(self.encoder.tuned.parameters()), list(self.head.parameters())
