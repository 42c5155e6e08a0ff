"""Reading folders of unlabelled training images into memory (uint8, size×size), and the validation masks.

Only image folders are read for training: a folder named ``masks`` (or inside one) is
refused, so a ground-truth folder can never be passed as training data by mistake. Masks
enter only through `load_validation`, whose figures are a reported curve, never a choice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import torch

from salplug.data import index_folder, read_image, read_mask, square_uint8


def read_list(path: str | Path) -> list[str]:
    """Image stems from a text file, one per line (blank lines and ``#`` comments skipped)."""
    lines = Path(path).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def list_images(folders: Sequence[str | Path], only: Collection[str] | None = None) -> list[tuple[str, Path]]:
    """(key, path) of every image in the folders, keys ``<parent-of-folder>/<stem>`` so folders cannot collide.

    `only`: stems to keep; every one of them must be found in the folders.
    """
    items: list[tuple[str, Path]] = []
    for folder in folders:
        folder = Path(folder)
        if "masks" in folder.resolve().parts:
            raise ValueError(f"a2s trains without labels: refusing to read the mask folder {folder}")
        found, _ = index_folder(folder)
        if not found:
            raise ValueError(f"no images in {folder}")
        prefix = folder.resolve().parent.name
        items += [(f"{prefix}/{stem}", found[stem]) for stem in sorted(found) if only is None or stem in only]
    if only is not None:
        missing = set(only) - {key.split("/", 1)[1] for key, _ in items}
        if missing:
            raise ValueError(f"image list names {len(missing)} stems not found in {[str(f) for f in folders]}, "
                             f"e.g. {sorted(missing)[:3]}")
    return items


def load_images(items: Sequence[tuple[str, Path]], size: int) -> torch.Tensor:
    """N×3×size×size uint8 RGB (area interpolation when shrinking)."""
    return torch.stack([square_uint8(read_image(path), size) for _, path in items])


def load_validation(folder: str | Path, stems: Sequence[str], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N×3×S×S uint8) and masks (N×1×S×S bool, > 128 then resized) of a dataset folder's `stems`."""
    folder = Path(folder)
    images, _ = index_folder(folder / "images")
    masks, _ = index_folder(folder / "masks")
    missing = [s for s in stems if s not in images or s not in masks]
    if missing:
        raise ValueError(f"validation: {len(missing)} stems lack an image or a mask in {folder}, e.g. {missing[:3]}")
    x = torch.stack([square_uint8(read_image(images[s]), size) for s in stems])
    m = torch.stack([square_uint8(read_mask(masks[s]).astype("float32"), size) for s in stems]) > 127
    return x, m
