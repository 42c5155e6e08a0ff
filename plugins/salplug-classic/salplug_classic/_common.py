"""Shared plumbing: maps back to tensors, resizing, Lab colour, per-image min-max normalisation.

The classical methods are written with numpy and OpenCV on the CPU; these helpers keep
the data contract (B×1×H×W float32 in [0, 1] on the image's device) in one place.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

EPS = 1e-12


def resize_max_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Resize one H×W×C image so its longer side is `max_side` (area interpolation down, linear up)."""
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height):
        return rgb
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgb, size, interpolation=interpolation)


def lab_u8(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 RGB float in [0, 1] to OpenCV's 8-bit CIELAB (L scaled to 0-255, a and b offset by 128)."""
    return cv2.cvtColor(np.round(rgb * 255.0).astype(np.uint8), cv2.COLOR_RGB2Lab)


def normalize(maps: Tensor) -> Tensor:
    """Min-max stretch each B×1×H×W map to [0, 1]; constant (or non-finite) maps become zeros."""
    maps = torch.nan_to_num(maps.float(), nan=0.0, posinf=0.0, neginf=0.0)
    low = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - low
    stretched = (maps - low) / span.clamp_min(EPS)
    return torch.where(span > EPS, stretched, torch.zeros_like(stretched)).clamp(0.0, 1.0)


def finish(maps: list[np.ndarray], height: int, width: int, device: torch.device) -> Tensor:
    """Per-image maps of any size, resized (bilinear) to height×width, normalised, on `device`."""
    resized = [
        m if m.shape == (height, width) else cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR)
        for m in (np.asarray(m, dtype=np.float32) for m in maps)
    ]
    stacked = torch.from_numpy(np.stack(resized)[:, None])
    return normalize(stacked).to(device)
