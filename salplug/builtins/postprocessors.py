"""Fixed clean-up steps that every chain can use: min-max normalisation and median filter."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor

from salplug.components import ComponentConfig, PostProcessor


class Normalize(PostProcessor):
    """Min-max stretch of each map to [0, 1]; constant maps are left as they are."""

    name = "normalize"

    class Config(ComponentConfig):
        eps: float = Field(default=1e-8, ge=0, description="Value ranges at or below this count as constant.")

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        flat = saliency.flatten(1)
        lo = flat.amin(dim=1).view(-1, 1, 1, 1)
        span = flat.amax(dim=1).view(-1, 1, 1, 1) - lo
        constant = span <= self.config.eps
        return torch.where(constant, saliency, (saliency - lo) / torch.where(constant, 1.0, span))


class Median(PostProcessor):
    """Median filter with replicated borders; removes speckle without blurring edges."""

    name = "median"

    class Config(ComponentConfig):
        size: int = Field(default=5, ge=3, description="Odd window side in pixels.")
        max_elements: int = Field(default=2**25, ge=1, description="Working-set cap (windows × pixels) per chunk.")

        @field_validator("size")
        @classmethod
        def _odd(cls, size: int) -> int:
            if size % 2 == 0:
                raise ValueError(f"expected an odd window size, got {size}")
            return size

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        k = self.config.size
        batch, _, height, width = saliency.shape
        per_image = k * k * height * width
        step = max(1, self.config.max_elements // per_image)
        padded = F.pad(saliency, (k // 2,) * 4, mode="replicate")
        out = [
            F.unfold(padded[s : s + step], k).median(dim=1).values.view(-1, 1, height, width)
            for s in range(0, batch, step)
        ]
        return out[0] if len(out) == 1 else torch.cat(out)
