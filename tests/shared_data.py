"""Where tests and benchmarks find SOD data: the shared sod-dev set, and tests/data.

CI clones the repository to ``X/main`` with the data at ``X/shared/data`` (see its
README); the data is never copied into the repository. Tests that read it carry the
``data`` marker, and ``tests/conftest.py`` skips them, with the path it looked at, where it
is absent. ``tests/data`` (see its README) is a four-photo dataset in the same layout that
ships with the repository, so the same scoring paths run on every clone.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SOD_DEV = DATA / "sod-dev"
TESTS_DATA = Path(__file__).resolve().parent / "data"
TESTS_DATA_PRIORS = ("contrast", "good")


def has_sod_dev() -> bool:
    """Whether the shared sod-dev set is there."""
    return (SOD_DEV / "masks").is_dir()


def sod_dev() -> Path:
    """The sod-dev folder, or a pytest skip that names where it was looked for."""
    if not has_sod_dev():
        pytest.skip(f"SOD benchmark data (sod-dev) not found: {SOD_DEV}")
    return SOD_DEV


def _gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise OSError(f"expected an 8-bit image at {path}, got nothing cv2 can read")
    return image


@functools.cache
def dataset_pairs(root: Path, prior: str) -> tuple[tuple[str, ...], tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Image ids, 8-bit maps of `prior` and 8-bit masks of the dataset at `root`, sorted by id (read once)."""
    ids = tuple(sorted(path.stem for path in (root / "masks").glob("*.png")))
    if not ids:
        raise FileNotFoundError(f"no masks in {root / 'masks'}")
    maps = tuple(_gray(root / "priors" / prior / f"{key}.png") for key in ids)
    masks = tuple(_gray(root / "masks" / f"{key}.png") for key in ids)
    return ids, maps, masks


def sod_dev_pairs(prior: str) -> tuple[tuple[str, ...], tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Image ids, 8-bit maps of `prior` and 8-bit masks of sod-dev, sorted by id (read once)."""
    return dataset_pairs(sod_dev(), prior)
