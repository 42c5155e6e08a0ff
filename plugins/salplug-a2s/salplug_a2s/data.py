"""Reading folders of unlabelled training images into memory (uint8, size×size).

Only image folders are read: a folder named ``masks`` (or inside one) is refused, so a
ground-truth folder can never be passed as training data by mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from salplug.datasets import index_folder
from salplug.io import read_image, square_uint8


def list_images(folders: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """(key, path) of every image in the folders, keys ``<parent-of-folder>/<stem>`` so folders cannot collide."""
    items: list[tuple[str, Path]] = []
    for folder in folders:
        folder = Path(folder)
        if "masks" in folder.resolve().parts:
            raise ValueError(f"a2s trains without labels: refusing to read the mask folder {folder}")
        found, _ = index_folder(folder)
        if not found:
            raise ValueError(f"no images in {folder}")
        prefix = folder.resolve().parent.name
        items += [(f"{prefix}/{stem}", found[stem]) for stem in sorted(found)]
    return items


def load_images(items: Sequence[tuple[str, Path]], size: int) -> torch.Tensor:
    """N×3×size×size uint8 RGB (area interpolation when shrinking)."""
    return torch.stack([square_uint8(read_image(path), size) for _, path in items])
