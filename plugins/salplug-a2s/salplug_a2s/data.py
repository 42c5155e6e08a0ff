"""Reading folders of unlabelled training images into memory (uint8, size×size), and the validation masks.

Only image folders are read for training: a folder named ``masks`` (or inside one) is
refused, so a ground-truth folder can never be passed as training data by mistake. Masks
enter only through `load_validation`, whose figures are a reported curve, never a choice.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from salplug.data import index_folder, read_image, read_mask, square_uint8
from salplug.errors import SalplugError


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


def load_images(items: Sequence[tuple[str, Path]], size: int, name: str = "a2s") -> tuple[torch.Tensor, list[tuple[str, Path]]]:
    """N×3×size×size uint8 RGB (area interpolation when shrinking) and the items read.

    Every image is decoded here, before the first step: one that does not decode is named
    and left out, rather than stopping the run.
    """
    images, kept = [], []
    for key, path in items:
        try:
            images.append(square_uint8(read_image(path), size))
        except (SalplugError, OSError, ValueError) as err:
            print(f"{name}: left out {path}: {err}", file=sys.stderr, flush=True)
            continue
        kept.append((key, path))
    if not kept:
        raise ValueError(f"{name}: expected readable training images, got none of {len(items)}")
    return torch.stack(images), kept


class Views(Dataset):
    """The loop's items for images held in memory: ``(epoch, index)`` → the index and whether to mirror it.

    The mirror is drawn from ``(seed, epoch, index)``, so a resumed run sees the views an
    uninterrupted one saw.
    """

    def __init__(self, count: int, seed: int, flip: bool):
        self.count, self.seed, self.flip = count, seed, flip

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, item: tuple[int, int]) -> dict[str, int | bool]:
        epoch, index = item
        mirror = self.flip and bool(np.random.default_rng([self.seed, epoch, index]).random() < 0.5)
        return {"index": index, "flip": mirror}


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
