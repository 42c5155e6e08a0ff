"""The embedded sample photos (scikit-image's bundled astronaut, coffee, chelsea, rocket).

Demos, benchmarks and plugin tests need real photos that every install has; these ship
with scikit-image, a salplug dependency, so nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F
from torch import Tensor

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")


def sample_photo(name: str) -> np.ndarray:
    """One sample as an H×W×3 uint8 RGB array."""
    if name not in SAMPLES:
        raise ValueError(f"expected a sample photo name, one of {', '.join(SAMPLES)}; got {name!r}")
    return getattr(skimage.data, name)()


def sample_tensor(name: str, size: int | tuple[int, int] | None = None) -> Tensor:
    """One sample as a 1×3×H×W float image in [0, 1], optionally resized (antialiased) to `size`."""
    image = torch.from_numpy(sample_photo(name)).permute(2, 0, 1)[None].float() / 255
    if size is None:
        return image
    size = (size, size) if isinstance(size, int) else size
    return F.interpolate(image, size=size, mode="bilinear", antialias=True).clamp(0, 1)


def sample_batch(size: int, batch: int) -> Tensor:
    """`batch` samples (the four, repeated in order) at size×size: a fixed B×3×H×W input for benchmarks."""
    photos = [sample_tensor(name, size) for name in SAMPLES]
    return torch.cat([photos[i % len(photos)] for i in range(batch)])
