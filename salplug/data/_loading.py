"""Photos from disk to the data contract in one call, for scripts and notebooks.

`load_images` turns a folder or a list of paths into one ``B×3×H×W`` batch; photos of
different sizes (portrait beside landscape) are an error that says so, unless the caller
chooses to pad them (``mixed="pad"``) or asks for one batch per size (`load_groups`).
Any file that cannot be read is named with its reason, all of them in one error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from salplug.errors import ImageReadError, SalplugError
from salplug.data._io import image_tensor, read_image
from salplug.data._inputs import collect_inputs


class LoadError(SalplugError, ValueError):
    """Images that cannot make one batch: unreadable files, or mixed sizes without a choice."""


@dataclass
class ImageBatch:
    """A contract batch and where it came from; `sizes` are the photos' own H×W (before any padding)."""

    images: Tensor
    keys: list[str]
    paths: list[Path]
    sizes: list[tuple[int, int]]

    def crop(self, maps: Tensor) -> list[Tensor]:
        """Each image's ``1×1×h×w`` map with the padding cut off again."""
        return [maps[i : i + 1, :, :h, :w] for i, (h, w) in enumerate(self.sizes)]


def _read(inputs: str | Path | Sequence[str | Path]) -> list[tuple[Path, str, np.ndarray]]:
    paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    items, failed = collect_inputs(paths)
    total = len(items) + len(failed)
    read = []
    for item in items:
        try:
            read.append((item.path, item.key, read_image(item.path)))
        except ImageReadError as err:
            failed[err.path] = err.reason
    if failed:
        listing = "; ".join(f"{path}: {reason}" for path, reason in sorted(failed.items()))
        raise LoadError(f"cannot load {len(failed)} of {total} inputs: {listing}")
    if not read:
        raise LoadError(f"no images in {', '.join(str(p) for p in paths)}")
    return read


def _batch(read: list[tuple[Path, str, np.ndarray]], pad_to: tuple[int, int] | None = None) -> ImageBatch:
    sizes = [array.shape[:2] for _, _, array in read]
    tensors = [image_tensor(array) for _, _, array in read]
    if pad_to is not None:
        tensors = [F.pad(t, (0, pad_to[1] - t.shape[-1], 0, pad_to[0] - t.shape[-2])) for t in tensors]
    return ImageBatch(torch.cat(tensors), [key for _, key, _ in read], [path for path, _, _ in read],
                      [(int(h), int(w)) for h, w in sizes])


def load_images(inputs: str | Path | Sequence[str | Path], *, mixed: Literal["error", "pad"] = "error") -> ImageBatch:
    """One batch of every image in `inputs` (files, or folders walked recursively), sorted by key.

    Photos of different sizes raise `LoadError` naming the sizes, unless ``mixed="pad"``:
    then each is padded with black at its bottom and right to the largest height and width
    (``batch.crop(maps)`` cuts the padding off the maps again).
    """
    if mixed not in ("error", "pad"):
        raise LoadError(f"mixed: expected 'error' or 'pad', got {mixed!r}")
    read = _read(inputs)
    sizes: dict[tuple[int, int], list[Path]] = {}
    for path, _, array in read:
        sizes.setdefault(array.shape[:2], []).append(path)
    if len(sizes) == 1:
        return _batch(read)
    if mixed == "error":
        kinds = ", ".join(f"{len(p)} of {w}×{h} (e.g. {p[0].name})" for (h, w), p in sizes.items())
        raise LoadError(f"expected images of one size for one batch, got {kinds}; pass mixed='pad' to pad them "
                        "to the largest, or use load_groups() for one batch per size")
    return _batch(read, (max(h for h, _ in sizes), max(w for _, w in sizes)))


def load_groups(inputs: str | Path | Sequence[str | Path]) -> list[ImageBatch]:
    """One batch per image size, in order of first appearance (keys sorted within each)."""
    groups: dict[tuple[int, int], list[tuple[Path, str, np.ndarray]]] = {}
    for entry in _read(inputs):
        groups.setdefault(entry[2].shape[:2], []).append(entry)
    return [_batch(group) for group in groups.values()]
