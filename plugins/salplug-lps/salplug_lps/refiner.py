"""The ``lps`` refiner: embeds pixels once, then promotes the prior map by distances to its region anchors."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from salplug.components import SHIPPED, ComponentConfig, Learned, Refiner, seeded
from salplug.ops import merge, resize

from .model import LPSNet

SHIPPED_FILE = "lps-mobilenetv2.pt"
BACKBONES = ("mobilenetv2_100", "vgg16", "tf_efficientnet_lite0", "resnet50", "baseline")
DEFAULTS: dict[str, Any] = {
    "backbone": "mobilenetv2_100",
    "size": 256,
    "stride": 4,
    "channels": 64,
    "dim": 64,
    "region": "conv",
}
"""Architecture fields: a field left at None takes the checkpoint's value, else this default."""
SHAPED = ("backbone", "stride", "channels", "dim", "region")
"""The fields that shape weights: a checkpoint only loads into the same values (size may change)."""


class LPS(Learned, Refiner):
    """LPS (Zeng et al., CVPR 2018): p(fg | x) from pixel-to-anchor distances, anchors from the prior's regions."""

    name = "lps"
    example_config = {"checkpoint": None, "backbone_weights": None, "size": 64, "channels": 8, "dim": 8}
    # every learned tensor (backbone included: training may fine-tune it) stored in fp16
    checkpoint_dtype = torch.float16
    shipped = SHIPPED_FILE
    defaults = DEFAULTS
    shaped = SHAPED
    missing_hint = "train one (salplug train lps) and pass checkpoint: PATH, or checkpoint: null for an untrained net"

    class Config(ComponentConfig):
        checkpoint: str | None = Field(
            default=SHIPPED,
            description="Weights: 'shipped' (salplug_lps/checkpoints/lps-mobilenetv2.pt), a path, or None (untrained).",
        )
        iterations: int = Field(default=1, ge=1, description="Test-time iterations T; 1 returns the first map Z(0).")
        average: bool = Field(
            default=True, description="T > 1: return the running mean of the rounds' maps (paper); false: the last "
            "round's map, each round's anchors from the map before it.")
        backbone: Literal[BACKBONES] | None = Field(
            default=None, description="Backbone (None: the checkpoint's, else mobilenetv2_100; the paper's is vgg16)."
        )
        backbone_weights: str | None = Field(
            default="imagenet", description="Backbone weight tag before the checkpoint loads (None: random, for tests)."
        )
        size: int | None = Field(
            default=None, ge=32, multiple_of=32,
            description="Working size: image and prior resized to size×size, the map resized back (None: checkpoint's, else 256).",
        )
        stride: Literal[1, 2, 4] | None = Field(
            default=None, description="Embedding grid stride (None: checkpoint's, else 4; the paper's is 1)."
        )
        channels: int | None = Field(default=None, ge=1, description="C, channels per level after sub-pixel upsampling (None: checkpoint's, else 64).")
        dim: int | None = Field(default=None, ge=1, description="D, embedding dimension (None: checkpoint's, else 64; the paper's is 512).")
        region: Literal["conv", "fc"] | None = Field(
            default=None, description="Region embedding: conv layers then average, or average then FC (None: checkpoint's, else conv)."
        )
        merge: bool = Field(
            default=True, description="Per pixel, keep the prior where it is more confident than LPS's map (|x - 0.5|, "
            "LDPS's rule; chosen on held-out DUTS-TR images, see the README); false: LPS's map alone (the paper).")
        merge_tolerance: float = Field(
            default=0.0, ge=0, le=0.5, description="LPS's map also wins where its confidence is within this much of the prior's.")
        seed: int = Field(default=0, description="Seed of the random initialisation of the untrained layers.")

    def build(self, arch: dict[str, Any]) -> None:
        with seeded(self.config.seed):
            self.net = LPSNet(arch["backbone"], self.config.backbone_weights, arch["channels"], arch["dim"],
                              arch["region"], arch["stride"])

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        small = resize(image, self.arch["size"]).clamp(0, 1)
        prior = resize(saliency.float(), self.arch["size"]).clamp(0, 1)
        out = self.net.refine(small, prior, self.config.iterations, self.config.average)
        out = torch.nan_to_num(resize(out, (height, width)).float(), nan=0.5).clamp(0, 1)
        return merge(saliency, out, self.config.merge_tolerance) if self.config.merge else out
