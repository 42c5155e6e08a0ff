"""Prior `baseline`: σ of a fine-tuned encoder + pyramid decoder, run at a square working size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from salplug.components import SHIPPED, ComponentConfig
from salplug.models import EncoderDecoderPrior

from .model import PyramidDecoder

SHIPPED_FILES = {"shipped": "baseline-mobilenetv2.pt", "fold0": "baseline-fold0.pt", "fold1": "baseline-fold1.pt"}
BACKBONES = ("mobilenetv2_100", "tf_efficientnet_lite0")
DEFAULTS = {"backbone": "mobilenetv2_100", "size": 256, "channels": 64}


class Baseline(EncoderDecoderPrior):
    """A supervised detector trained on DUTS-TR masks (MobileNetV2 encoder, pyramid decoder)."""

    name = "baseline"
    example_config = {"checkpoint": None, "backbone_weights": None, "size": 64, "channels": 16}

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

    shipped = SHIPPED_FILES
    """``shipped``: trained on all of DUTS-TR; ``fold0``/``fold1``: the out-of-fold models."""
    defaults = DEFAULTS
    shaped = ("backbone", "channels")

    def make_decoder(self, in_channels: Sequence[int], channels: int) -> PyramidDecoder:
        return PyramidDecoder(in_channels, channels)
