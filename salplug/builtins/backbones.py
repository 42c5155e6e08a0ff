"""timm encoders as salplug backbones: any timm architecture, plus fixed-architecture names.

The backbone owns its input normalisation (taken from the weight tag), so chains pass
contract images in [0, 1]. Channels-last and autocast only act on CUDA inputs.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from salplug.components._compat import import_timm
from salplug.components._base import Backbone, ComponentConfig
from salplug.components._weight_tags import describe, load_matching, resolve

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TimmBackbone(Backbone):
    """A timm model built with ``features_only=True``; levels and strides come from its `feature_info`."""

    name = "timm"
    example_config = {"arch": "mobilenetv2_100", "weights": None}

    class Config(ComponentConfig):
        arch: str = Field(description="timm architecture, built with features_only=True (e.g. mobilenetv2_100).")
        weights: str | None = Field(
            default="imagenet", description="Weight tag: which weights to load and how inputs are normalised "
            "(None: random init, with timm's normalisation for the architecture).")
        weights_path: str | None = Field(
            default=None, description="Weights file for the tag, tried before $SALPLUG_WEIGHTS_DIR, the packages "
            "and a timm download (None: those only).")
        out_indices: tuple[int, ...] | None = Field(
            default=None, description="Feature levels timm returns, by index (None: the architecture's default levels).")
        frozen: bool = Field(default=True, description="Keep the weights fixed and batch norm in eval mode, even in training.")
        channels_last: bool = Field(default=False, description="Channels-last tensors on CUDA inputs (no effect on the CPU).")
        autocast: Literal["off", "bf16", "fp16"] = Field(
            default="off", description="Autocast dtype of the forward pass on CUDA inputs (off: fp32; no effect on the CPU).")

        @model_validator(mode="after")
        def _path_needs_tag(self):
            if self.weights_path is not None and self.weights is None:
                raise ValueError("weights_path needs a weights tag (it says how inputs are normalised), got None")
            return self

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        cfg = self.config
        extra = {} if cfg.out_indices is None else {"out_indices": cfg.out_indices}
        self.model = import_timm().create_model(cfg.arch, pretrained=False, features_only=True, **extra)
        if cfg.weights is None:
            meta = describe(cfg.arch, "random")
            mean, std = meta.mean, meta.std
        else:
            resolved = resolve(cfg.arch, cfg.weights, cfg.weights_path)
            load_matching(self.model, resolved)
            mean, std = resolved.mean, resolved.std
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        if cfg.frozen:
            self.model.requires_grad_(False)
        self._channels_last_done = False

    @property
    def channels(self) -> list[int]:
        return list(self.model.feature_info.channels())

    @property
    def strides(self) -> list[int]:
        return list(self.model.feature_info.reduction())

    def train(self, mode: bool = True):
        """A frozen encoder keeps its batch-norm statistics: it stays in eval mode."""
        super().train(mode)
        if self.config.frozen:
            self.model.eval()
        return self

    def forward(self, image: Tensor) -> list[Tensor]:
        x = (image - self.mean) / self.std
        cuda = x.is_cuda
        if cuda and self.config.channels_last:
            if not self._channels_last_done:
                self.model.to(memory_format=torch.channels_last)
                self._channels_last_done = True
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = _AUTOCAST.get(self.config.autocast)
        with torch.autocast("cuda", dtype=dtype or torch.float16, enabled=cuda and dtype is not None):
            features = self.model(x)
        return [f.float() for f in features]


class MobileNetV2(TimmBackbone):
    """timm mobilenetv2_100; its ``imagenet`` tag resolves offline from torchvision's weights."""

    name = "mobilenetv2_100"
    example_config = None

    class Config(TimmBackbone.Config):
        arch: Literal["mobilenetv2_100"] = Field(default="mobilenetv2_100", description="timm architecture (fixed for this name).")


class EfficientNetLite0(TimmBackbone):
    """timm tf_efficientnet_lite0; its ``imagenet`` tag resolves offline from the lite0 package."""

    name = "tf_efficientnet_lite0"
    example_config = None

    class Config(TimmBackbone.Config):
        arch: Literal["tf_efficientnet_lite0"] = Field(default="tf_efficientnet_lite0", description="timm architecture (fixed for this name).")


class ResNet50(TimmBackbone):
    """timm resnet50; no offline weights, so use ``weights=None`` or a ``weights_path`` offline."""

    name = "resnet50"
    example_config = {"weights": None}

    class Config(TimmBackbone.Config):
        arch: Literal["resnet50"] = Field(default="resnet50", description="timm architecture (fixed for this name).")


class VGG16(TimmBackbone):
    """timm vgg16, its five conv stages at strides 1-16 (level six is a 4096-channel pre-logits MLP)."""

    name = "vgg16"
    example_config = {"weights": None}

    class Config(TimmBackbone.Config):
        arch: Literal["vgg16"] = Field(default="vgg16", description="timm architecture (fixed for this name).")
        out_indices: tuple[int, ...] | None = Field(
            default=(0, 1, 2, 3, 4), description="Feature levels timm returns, by index (default: the five conv stages).")


BACKBONES: tuple[type[TimmBackbone], ...] = (TimmBackbone, MobileNetV2, EfficientNetLite0, ResNet50, VGG16)
