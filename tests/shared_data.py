"""Where tests and benchmarks find the shared SOD data, and the skip where it is absent.

CI clones the repository to ``X/main`` with the data at ``X/shared/data`` (see its
README); the data is never copied into the repository.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def sod_dev() -> Path:
    """The sod-dev folder, or a pytest skip that names where it was looked for."""
    path = DATA / "sod-dev"
    if not (path / "masks").is_dir():
        pytest.skip(f"SOD benchmark data (sod-dev) not found: {path}")
    return path


def _gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise OSError(f"expected an 8-bit image at {path}, got nothing cv2 can read")
    return image


@functools.cache
def sod_dev_pairs(prior: str) -> tuple[tuple[str, ...], tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Image ids, 8-bit maps of `prior` and 8-bit masks of sod-dev, sorted by id (read once)."""
    root = sod_dev()
    ids = tuple(sorted(path.stem for path in (root / "masks").glob("*.png")))
    maps = tuple(_gray(root / "priors" / prior / f"{key}.png") for key in ids)
    masks = tuple(_gray(root / "masks" / f"{key}.png") for key in ids)
    return ids, maps, masks
