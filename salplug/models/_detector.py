"""A base for priors that are trained detectors: a fine-tuned encoder and a decoder at a square working size.

The image is resized to ``size×size``, the decoder's logits are upsampled back to the
input's height and width and squashed by a sigmoid. Architecture fields left at None in
the config follow the checkpoint (`salplug.components._weights.checkpoint_architecture`), so a shipped
file rebuilds the network it was trained as; the encoder's batch-norm statistics stay at
their ImageNet values in training, since CPU batches are too small to re-estimate them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salplug.components._base import PriorProvider
from salplug.host._factory import build
from salplug.ops._resize import resize
from salplug.components._weights import checkpoint_architecture


class EncoderDecoderPrior(PriorProvider):
    """σ(decoder(encoder(image at size×size))) at the input's size.

    Subclasses set `defaults` (values of the architecture fields ``backbone``, ``size``,
    ``channels``), optionally `shaped` (fields whose stored value an explicit config may not
    contradict), and implement `checkpoint_file` and `make_decoder`. Their `Config` has
    ``checkpoint``, ``backbone``, ``backbone_weights``, ``size``, ``channels`` and ``seed``.
    """

    learned = True
    checkpoint_dtype = torch.float16
    defaults: ClassVar[Mapping[str, Any]] = {}
    shaped: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config=None, **options: Any):
        super().__init__(config, **options)
        cfg = self.config
        path = None if cfg.checkpoint is None else self.checkpoint_file(cfg.checkpoint)
        self.arch = checkpoint_architecture(cfg, self.defaults, path, shaped=self.shaped, owner=f"prior {self.name!r}")
        self.config = cfg = cfg.model_copy(update=self.arch)  # saved checkpoints record the network they hold
        self.backbone = build("backbone", self.arch["backbone"], weights=cfg.backbone_weights, frozen=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.decoder = self.make_decoder(self.backbone.channels, self.arch["channels"])
        self.card: dict[str, Any] = {}
        if path is not None:
            self.card = self.load_weights(path)
        self.eval()

    def checkpoint_file(self, value: str) -> Path:
        """The file a ``checkpoint`` value names (a shipped tag or a path)."""
        raise NotImplementedError

    def make_decoder(self, in_channels: Sequence[int], channels: int) -> nn.Module:
        """The decoder: the encoder's levels (their channels given) to a one-channel logit map."""
        raise NotImplementedError

    def train(self, mode: bool = True):
        """Batch-norm statistics of the encoder stay frozen (CPU batches are too small to re-estimate them)."""
        super().train(mode)
        self.backbone.eval()
        return self

    def logits(self, image: Tensor) -> Tensor:
        """The decoder's logits for images already at the working size."""
        return self.decoder(self.backbone(image))

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        height, width = image.shape[-2:]
        logits = self.logits(resize(image, self.arch["size"]))
        if tuple(logits.shape[-2:]) != (height, width):
            logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits).clamp(0, 1)
