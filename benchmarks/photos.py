"""Benchmark inputs: scikit-image's bundled photos at a fixed size, with a centre-bias map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from skimage import data

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photo_batch(size: int, batch: int) -> torch.Tensor:
    """`batch` photos (the four bundled ones, repeated) resized to size×size, B×3×H×W in [0, 1]."""
    photos = []
    for name in PHOTOS:
        image = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255
        photos.append(F.interpolate(image, size=(size, size), mode="bilinear", antialias=True).clamp(0, 1))
    return torch.cat([photos[i % len(photos)] for i in range(batch)])


def centre_maps(images: torch.Tensor) -> torch.Tensor:
    """A soft centre-bias map per image: the kind of prior a post-processor cleans."""
    height, width = images.shape[-2:]
    ys = torch.linspace(-1, 1, height).view(-1, 1)
    xs = torch.linspace(-1, 1, width).view(1, -1)
    bias = torch.exp(-(ys**2 + xs**2) / 0.3)
    return bias.expand(images.shape[0], 1, height, width).contiguous()
