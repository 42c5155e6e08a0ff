"""Priors that need no model: maps read from disk, and the centre-bias baseline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import torch
from pydantic import Field
from torch import Tensor

from salplug.components._base import ComponentConfig, PriorProvider
from salplug.errors import ContractError, ImageReadError
from salplug.testing import EXAMPLE_MAPS
from salplug.data._io import IMAGE_SUFFIXES, map_tensor, read_map


class GivenMaps(PriorProvider):
    """Existing maps from a folder, looked up by image key (file stem): refine any detector's output."""

    name = "given"
    example_config = {"root": str(EXAMPLE_MAPS), "resize": True}

    class Config(ComponentConfig):
        root: Path = Field(description="Folder holding one map per image, named after the image's key.")
        suffixes: tuple[str, ...] = Field(default=IMAGE_SUFFIXES, description="File endings tried, in order.")
        resize: bool = Field(default=False, description="Resize maps whose size differs from the image's.")

    def _find(self, key: str) -> Path:
        for suffix in self.config.suffixes:
            path = self.config.root / f"{key}{suffix}"
            if path.is_file():
                return path
        raise ImageReadError(
            self.config.root / key, f"no map for image {key!r} (tried {', '.join(self.config.suffixes)})"
        )

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        if keys is None:
            raise ContractError("the 'given' prior looks maps up by key: call the chain with keys=[stem, ...]")
        height, width = image.shape[-2:]
        maps = []
        for key in keys:
            path = self._find(key)
            array = read_map(path)
            if array.shape != (height, width):
                if not self.config.resize:
                    raise ImageReadError(
                        path, f"map is {array.shape[1]}×{array.shape[0]} but its image is {width}×{height}"
                    )
                array = cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)
            maps.append(array)
        return map_tensor(maps).to(image.device)


class CenterPrior(PriorProvider):
    """Gaussian centre bias: the classic baseline that salient objects sit near the middle."""

    name = "center"

    class Config(ComponentConfig):
        sigma: float = Field(default=0.25, gt=0, description="Standard deviation as a fraction of each side.")

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        batch, _, height, width = image.shape
        ys = torch.linspace(-0.5, 0.5, height, device=image.device, dtype=image.dtype)
        xs = torch.linspace(-0.5, 0.5, width, device=image.device, dtype=image.dtype)
        distance = ys[:, None] ** 2 + xs[None, :] ** 2
        bias = torch.exp(-distance / (2 * self.config.sigma**2))
        return bias.expand(batch, 1, height, width).contiguous()
