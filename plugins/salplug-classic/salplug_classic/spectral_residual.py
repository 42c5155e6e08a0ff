"""Spectral residual saliency (Hou & Zhang, CVPR 2007).

The log amplitude spectrum of natural images is locally smooth; what sticks out of its
local average (the residual) is put back with the original phase and marks the
"novel" parts of the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from pydantic import Field
from scipy import ndimage
from torch import Tensor

import salplug
from salplug.ops import to_hwc

from ._common import finish


class SpectralResidual(salplug.PriorProvider):
    """Spectral residual of the log amplitude spectrum: a fast, training-free frequency-domain prior."""

    name = "spectral-residual"
    example_config = {"width": 32}

    class Config(salplug.ComponentConfig):
        width: int = Field(default=64, ge=8, description="Width the grayscale image is resized to (paper: 64 px).")
        average: int = Field(
            default=3, ge=1, description="Side of the box filter averaging the log spectrum (paper: 3)."
        )
        sigma: float = Field(
            default=8.0,
            gt=0,
            description="Gaussian smoothing sigma in pixels at a 64-px width (paper: 8); scaled with `width`.",
        )

    def _one(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        small_w = self.config.width
        small_h = max(1, round(small_w * height / width))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        gray = cv2.resize(gray, (small_w, small_h), interpolation=cv2.INTER_AREA).astype(np.float64)
        spectrum = np.fft.fft2(gray)
        log_amplitude = np.log(np.abs(spectrum) + 1e-8)
        residual = log_amplitude - ndimage.uniform_filter(log_amplitude, size=self.config.average, mode="wrap")
        back = np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))
        sigma = self.config.sigma * small_w / 64.0
        return ndimage.gaussian_filter(np.abs(back) ** 2, sigma=sigma, mode="reflect")

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        height, width = image.shape[-2:]
        return finish([self._one(rgb) for rgb in to_hwc(image)], height, width, image.device)
