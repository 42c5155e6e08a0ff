"""Prior `baseline`: σ of a fine-tuned encoder + pyramid decoder, run at a square working size."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

import salplug
from salplug.components import ComponentConfig, PriorProvider
from salplug.resize import resize
from salplug.weights import checkpoint_architecture

from .model import PyramidDecoder

SHIPPED = "shipped"
SHIPPED_FILES = {"shipped": "baseline-mobilenetv2.pt", "fold0": "baseline-fold0.pt", "fold1": "baseline-fold1.pt"}
BACKBONES = ("mobilenetv2_100", "tf_efficientnet_lite0")
DEFAULTS = {"backbone": "mobilenetv2_100", "size": 256, "channels": 64}


def shipped_path(tag: str) -> Path:
    """A checkpoint installed with the package: ``shipped`` (all of DUTS-TR) or ``fold0``/``fold1``."""
    return Path(str(resources.files("salplug_baseline") / "checkpoints" / SHIPPED_FILES[tag]))


class Baseline(PriorProvider):
    """A supervised detector trained on DUTS-TR masks (MobileNetV2 encoder, pyramid decoder)."""

    name = "baseline"
    learned = True
    example_config = {"checkpoint": None, "backbone_weights": None, "size": 64, "channels": 16}
    checkpoint_dtype = torch.float16

    class Config(ComponentConfig):
        checkpoint: str | None = Field(
            default=SHIPPED,
            description="Weights: 'shipped' (trained on all of DUTS-TR), 'fold0'/'fold1' (out-of-fold models), "
                        "a path, or None (an untrained decoder: tests and training only).",
        )
        backbone: Literal[BACKBONES] | None = Field(default=None, description="Encoder (None: the checkpoint's, else mobilenetv2_100).")
        backbone_weights: str | None = Field(default="imagenet", description="Encoder weight tag before the checkpoint loads (None: random).")
        size: int | None = Field(default=None, ge=32, multiple_of=32, description="Square working size (None: the checkpoint's, else 256).")
        channels: int | None = Field(default=None, ge=8, multiple_of=8, description="Decoder width (None: the checkpoint's, else 64).")
        seed: int = Field(default=0, description="Seed of the decoder's random initialisation.")

    def __init__(self, config=None, **options: Any):
        super().__init__(config, **options)
        cfg = self.config
        path = None if cfg.checkpoint is None else (
            shipped_path(cfg.checkpoint) if cfg.checkpoint in SHIPPED_FILES else Path(cfg.checkpoint))
        self.arch = checkpoint_architecture(cfg, DEFAULTS, path, shaped=("backbone", "channels"), owner="baseline")
        self.config = cfg = cfg.model_copy(update=self.arch)
        self.backbone = salplug.build("backbone", self.arch["backbone"], weights=cfg.backbone_weights, frozen=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.decoder = PyramidDecoder(self.backbone.channels, self.arch["channels"])
        self.card: dict[str, Any] = {}
        if path is not None:
            self.card = self.load_weights(path)
        self.eval()

    def train(self, mode: bool = True):
        """Encoder batch-norm statistics stay at ImageNet's (CPU batches are too small to re-estimate them)."""
        super().train(mode)
        self.backbone.eval()
        return self

    def logits(self, image: Tensor) -> Tensor:
        """Logits at stride 2 for images already at the working size."""
        return self.decoder(self.backbone(image))

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        height, width = image.shape[-2:]
        logits = self.logits(resize(image, self.arch["size"]))
        return torch.sigmoid(F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False))
