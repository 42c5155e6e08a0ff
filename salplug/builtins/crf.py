"""Fully connected CRF clean-up (Krähenbühl & Koltun, 2011) through pydensecrf."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from salplug.components._base import ComponentConfig, PostProcessor


def _unary(prob: np.ndarray, unary: str, gt_prob: float, clip: float) -> np.ndarray:
    """Negative log-probabilities of (background, foreground) per pixel, shape 2×N float32."""
    if unary == "labels":
        # pydensecrf's unary_from_labels with the map thresholded at 0.5: every pixel trusts its label at gt_prob.
        fg = prob.reshape(-1) > 0.5
        p = np.where(fg, gt_prob, 1.0 - gt_prob)
    else:
        p = prob.reshape(-1)
    both = np.clip(np.stack([1.0 - p, p]), clip, 1.0)
    return np.ascontiguousarray(-np.log(both), dtype=np.float32)


class DenseCRF(PostProcessor):
    """Dense CRF with Gaussian and bilateral (colour) kernels; snaps soft maps to image edges.

    The C++ solver works per image on the CPU, so the step is CPU-bound and loops over the batch.
    Defaults reproduce the "after DenseCRF" figures of the shared data README (unary from the map).
    """

    name = "densecrf"
    device_bound = "cpu"

    class Config(ComponentConfig):
        unary: Literal["map", "labels"] = Field(
            default="map",
            description="'map': -log of the map's probabilities; 'labels': the map thresholded at 0.5, "
            "trusted at gt_prob (pydensecrf's unary_from_labels, A2S pseudo-label style).",
        )
        gt_prob: float = Field(default=0.7, gt=0.5, lt=1.0, description="Label certainty for unary='labels'.")
        clip: float = Field(default=1e-5, gt=0.0, lt=0.5, description="Probability floor before the log.")
        gaussian_sxy: float = Field(default=3.0, gt=0, description="Spatial std of the smoothness kernel (px).")
        gaussian_compat: float = Field(default=3.0, ge=0, description="Weight of the smoothness kernel.")
        bilateral_sxy: float = Field(default=50.0, gt=0, description="Spatial std of the appearance kernel (px).")
        bilateral_srgb: float = Field(default=5.0, gt=0, description="Colour std of the appearance kernel (0-255).")
        bilateral_compat: float = Field(default=10.0, ge=0, description="Weight of the appearance kernel.")
        iterations: int = Field(default=10, ge=1, description="Mean-field inference steps.")
        output: Literal["soft", "hard"] = Field(
            default="soft", description="'soft': foreground probability; 'hard': 0/1 argmax labels."
        )

    def _one(self, image: np.ndarray, prob: np.ndarray) -> np.ndarray:
        import pydensecrf.densecrf as dcrf

        c = self.config
        height, width = prob.shape
        crf = dcrf.DenseCRF2D(width, height, 2)
        crf.setUnaryEnergy(_unary(prob, c.unary, c.gt_prob, c.clip))
        crf.addPairwiseGaussian(sxy=c.gaussian_sxy, compat=c.gaussian_compat)
        crf.addPairwiseBilateral(sxy=c.bilateral_sxy, srgb=c.bilateral_srgb, rgbim=image, compat=c.bilateral_compat)
        q = np.array(crf.inference(c.iterations), dtype=np.float32).reshape(2, height, width)
        return (q[1] > q[0]).astype(np.float32) if c.output == "hard" else q[1]

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        if image.shape[0] != saliency.shape[0] or image.shape[-2:] != saliency.shape[-2:]:
            raise ValueError(
                f"densecrf: expected image B×3×H×W and saliency B×1×H×W of the same B, H, W, "
                f"got {tuple(image.shape)} and {tuple(saliency.shape)}"
            )
        rgb = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        prob = saliency.detach().clamp(0, 1).double().cpu().numpy()[:, 0]
        out = [self._one(np.ascontiguousarray(rgb[i]), prob[i]) for i in range(len(prob))]
        return torch.from_numpy(np.stack(out)[:, None]).to(saliency.device, saliency.dtype).clamp(0, 1)
