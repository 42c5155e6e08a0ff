"""Backbone `baseline`: the trained detector's decoder maps, features that already separate salient from not.

ImageNet encoders describe what a thing is; a refiner that transfers labels between
images (MIJR) needs features in which salient regions of different images are alike.
The baseline's pyramid decoder, trained on DUTS-TR masks, gives one such map per encoder
stride, each carrying the deeper levels' context down (`PyramidDecoder.levels`).
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor

from salplug.components import Backbone, ComponentConfig

from .prior import Baseline


class BaselineFeatures(Backbone):
    """The baseline detector's decoder levels (strides of its encoder, shallow to deep)."""

    name = "baseline"
    example_config = {"weights": None}

    class Config(ComponentConfig):
        weights: str | None = Field(
            default="shipped",
            description="The detector's checkpoint: 'shipped', 'fold0'/'fold1' (out-of-fold models), a path; "
                        "'imagenet' or None: an untrained decoder on an ImageNet or random encoder (tests, or a host "
                        "whose own checkpoint holds these weights). Images the detector trained on get cleaner features "
                        "than new ones: pair a fold model with the images of its held-out fold.",
        )
        frozen: bool = Field(default=True, description="No gradient to the detector (it stays in eval mode).")

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        cfg = self.config
        untrained = cfg.weights in (None, "imagenet")
        self.detector = Baseline(checkpoint=None if untrained else cfg.weights,
                                 backbone_weights=cfg.weights if untrained else "imagenet")
        self.card = self.detector.card
        if cfg.frozen:
            self.detector.requires_grad_(False)

    @property
    def channels(self) -> list[int]:
        return self.detector.decoder.widths

    @property
    def strides(self) -> list[int]:
        return self.detector.backbone.strides

    def train(self, mode: bool = True):
        """A frozen detector keeps eval mode (its GroupNorm has no statistics, its encoder's batch norm does)."""
        super().train(mode and not self.config.frozen)
        return self

    def forward(self, image: Tensor) -> list[Tensor]:
        return self.detector.decoder.levels(self.detector.backbone(image))
