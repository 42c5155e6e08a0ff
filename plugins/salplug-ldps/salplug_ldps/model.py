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

from .relations import anchor_weights, foreground_anchor

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
        return self.tail(self.reduce(x))

    def tail(self, reduced: Tensor) -> Tensor:
        """Everything after the 1×1 reduction."""
        return self.project(torch.cat([branch(reduced) for branch in self.branches], dim=1))


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

    def from_low(self, anchor: Tensor, low: Tensor, size: tuple[int, int]) -> Tensor:
        """`forward(anchor, upsampled low)` in eval mode, with the first 1×1 convolution and its batch norm
        at the low resolution: both are affine and bilinear weights sum to 1, so they commute with the
        upsampling, and the full-size pair tensor is never built."""
        conv, bn, act = self.body[0]
        channels = anchor.shape[1]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        weight = conv.weight[:, :, 0, 0] * scale[:, None]
        shift = bn.bias - bn.running_mean * scale + anchor @ weight[:, :channels].T
        first = F.conv2d(low, weight[:, channels:, None, None]) + shift[:, :, None, None]
        first = F.interpolate(first, size=size, mode="bilinear", align_corners=False)
        return self.out(self.body[1](act(first)))


def upsampling_matrix(source: int, target: int, like: Tensor) -> Tensor:
    """The target×source matrix of 1-D bilinear resizing (align_corners False), as F.interpolate applies it."""
    eye = torch.eye(source, dtype=like.dtype, device=like.device)[None, None]
    return F.interpolate(eye, size=(target, source), mode="bilinear", align_corners=False)[0, 0]


def anchor_from_low(low: Tensor, weights: Tensor) -> Tensor:
    """``sum_i p_i up(low)_i`` without upsampling `low`: bilinear resizing is separable, U = U_h ⊗ U_w, so the
    pixel weights are pulled back to the low resolution instead (``U_hᵀ P U_w``)."""
    h, w = low.shape[-2:]
    up_h = upsampling_matrix(h, weights.shape[-2], low)
    up_w = upsampling_matrix(w, weights.shape[-1], low)
    pulled = up_h.T @ weights.to(low.dtype)[:, 0] @ up_w
    return torch.einsum("bchw,bhw->bc", low, pulled)


class Head(nn.Module):
    """Everything after the encoder: fusion at stride 4, the two transforms and the discriminator."""

    def __init__(self, channels: int = 32):
        super().__init__()
        self.aspp = ASPP(sum(ENCODER_CHANNELS), out=channels)
        self.certain = transform(channels)
        self.all = transform(channels)
        self.discriminator = Discriminator(channels)

    def fuse(self, stem: Tensor, x4: Tensor, x16: Tensor, x32: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder maps to the stride-4 "certain" and "all" features.

        The ASPP's 1×1 reduction of the stride-4 concatenation [stem, x4, up(x16), up(x32)] is
        applied to each level before it is upsampled: a 1×1 convolution commutes with bilinear
        resizing, so the 320- and 96-channel maps are never built at stride 4.
        """
        size = x4.shape[-2:]
        stem = F.adaptive_avg_pool2d(stem, size) if stem.shape[-2:] != size else stem
        conv, bn, act = self.aspp.reduce
        weights = torch.split(conv.weight, ENCODER_CHANNELS, dim=1)
        reduced = F.conv2d(stem, weights[0]) + F.conv2d(x4, weights[1])
        for level, weight in zip((x16, x32), weights[2:]):
            reduced = reduced + F.interpolate(F.conv2d(level, weight), size=size, mode="bilinear", align_corners=False)
        fused = self.aspp.tail(act(bn(reduced)))
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
        """Anchor from the "certain" features, pairs with the "all" features, both upsampled to the prior's size.

        In eval mode the same logits come from the stride-4 features directly (`anchor_from_low`,
        `Discriminator.from_low`), which skips building full-size feature maps.
        """
        size = prior.shape[-2:]
        if not self.training:
            anchor = anchor_from_low(certain, anchor_weights(prior, theta_fg, topk))
            return self.head.discriminator.from_low(anchor, every, size)
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
