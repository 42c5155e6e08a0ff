"""A base for priors that are trained detectors: a fine-tuned encoder and a decoder at a square working size.

The image is resized to ``size×size``, the decoder's logits are upsampled back to the
input's height and width and squashed by a sigmoid. Architecture fields left at None in
the config follow the checkpoint (`salplug.components.Learned`), so a shipped file rebuilds
the network it was trained as; the encoder's batch-norm statistics stay at their ImageNet
values in training, since CPU batches are too small to re-estimate them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salplug.components._base import PriorProvider
from salplug.components._learned import Learned, seeded
from salplug.host._factory import build as build_component
from salplug.ops._resize import resize


class EncoderDecoderPrior(Learned, PriorProvider):
    """σ(decoder(encoder(image at size×size))) at the input's size.

    Subclasses set `shipped` and `defaults` (values of the architecture fields ``backbone``,
    ``size``, ``channels``), optionally `shaped` (`salplug.components.Learned`), and implement
    `make_decoder`. Their `Config` has ``checkpoint``, ``backbone``, ``backbone_weights``,
    ``size``, ``channels`` and ``seed``.
    """

    checkpoint_dtype = torch.float16
    frozen = ("backbone",)

    def build(self, arch: dict[str, Any]) -> None:
        self.backbone = build_component("backbone", arch["backbone"], weights=self.config.backbone_weights, frozen=False)
        with seeded(self.config.seed):
            self.decoder = self.make_decoder(self.backbone.channels, arch["channels"])

    def make_decoder(self, in_channels: Sequence[int], channels: int) -> nn.Module:
        """The decoder: the encoder's levels (their channels given) to a one-channel logit map."""
        raise NotImplementedError

    def logits(self, image: Tensor) -> Tensor:
        """The decoder's logits for images already at the working size."""
        return self.decoder(self.backbone(image))

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        height, width = image.shape[-2:]
        logits = self.logits(resize(image, self.arch["size"]))
        if tuple(logits.shape[-2:]) != (height, width):
            logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits).clamp(0, 1)
