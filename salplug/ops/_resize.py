"""Resizing image and map batches to a model's working size and back.

Components that run a network at a fixed size shrink their input and restore the
contract's H×W on the way out; one definition keeps shrinking antialiased everywhere.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def resize(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bilinear resize of a B×C×H×W batch to `size` (antialiased when shrinking); a no-op at the same size."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
