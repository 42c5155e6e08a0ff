"""Frequency-tuned saliency (Achanta et al., CVPR 2009).

A band-pass view of the image in CIELAB: distance of each slightly blurred pixel from
the image's mean colour. Keeps full resolution and uniformly highlights whole objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from pydantic import Field
from torch import Tensor

import salplug
from salplug.ops import to_hwc

from ._common import finish

BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0], dtype=np.float32) / 16.0


class FrequencyTuned(salplug.PriorProvider):
    """||mean Lab colour - Gaussian-blurred Lab pixel||: the frequency-tuned (FT) prior."""

    name = "frequency-tuned"

    class Config(salplug.ComponentConfig):
        blur: bool = Field(
            default=True, description="Blur the Lab image with the 5×5 binomial kernel first (paper: yes)."
        )

    def _one(self, rgb: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
        mean = lab.reshape(-1, 3).mean(axis=0)
        if self.config.blur:
            lab = cv2.sepFilter2D(lab, -1, BINOMIAL_5, BINOMIAL_5, borderType=cv2.BORDER_REFLECT_101)
        return np.linalg.norm(lab - mean, axis=-1)

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        height, width = image.shape[-2:]
        return finish([self._one(rgb) for rgb in to_hwc(image)], height, width, image.device)
