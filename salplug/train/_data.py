"""Training samples read from a `FolderDataset` in DataLoader workers, augmented reproducibly.

Each sample is addressed by ``(epoch, index)`` and draws its augmentation from a generator
seeded by ``(seed, epoch, index)``: the same views come out whatever the number of workers
and whether or not a run was interrupted and resumed, so a resumed run ends with the same
weights as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler, default_collate

from salplug.data._datasets import FolderDataset
from salplug.data._io import read_image, read_map, read_mask, square
from salplug.errors import SalplugError
from salplug.train._parallel import SINGLE, Group, shard

UNUSABLE = "unusable"
"""Key of an item whose files failed to read: its value says which file and why."""


def collate_usable(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch of the usable items; the others' reasons under ``skipped``, for the loop to report."""
    skipped = [item[UNUSABLE] for item in items if UNUSABLE in item]
    usable = [item for item in items if UNUSABLE not in item]
    if not usable:
        raise SalplugError(f"every sample of a batch is unusable: {'; '.join(skipped)}")
    batch = default_collate(usable)
    if skipped:
        batch["skipped"] = skipped
    return batch


def picture_size(path: Path) -> tuple[int, int]:
    """(height, width) upright, from the file's header alone; raises when the header is unreadable."""
    from PIL import Image

    with Image.open(path) as picture:
        width, height = picture.size
        orientation = picture.getexif().get(0x0112, 1) if "exif" in picture.info else 1  # else getexif decodes a PNG
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def epoch_order(count: int, seed: int, epoch: int) -> list[int]:
    """The sample order of one epoch: a permutation fixed by the seed and the epoch."""
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()


class EpochBatches(Sampler):
    """This process's part of each batch of one epoch: lists of ``(epoch, index)`` in `epoch_order`.

    Batches of `batch_size` start at position `start` (a resumed epoch). In one process a
    part is the whole batch; with data-parallel ranks it is the rank's `shard` of it. A rank
    whose shard of a short last batch is empty gets the batch's first sample, which the loop
    counts with weight 0, so every rank takes every step.
    """

    def __init__(self, count: int, seed: int, epoch: int, batch_size: int, start: int = 0, group: Group = SINGLE):
        self.count, self.seed, self.epoch, self.batch_size, self.start = count, seed, epoch, batch_size, start
        self.group = group

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = epoch_order(self.count, self.seed, self.epoch)[self.start :]
        for first in range(0, len(order), self.batch_size):
            batch = order[first : first + self.batch_size]
            a, b = shard(len(batch), self.group)
            yield [(self.epoch, i) for i in (batch[a:b] or batch[:1])]

    def __len__(self) -> int:
        return -(-(self.count - self.start) // self.batch_size)


class TrainingSet(Dataset):
    """Square ``size×size`` views of images (and masks / priors when the dataset has them).

    A view is a random crop whose sides are each a share in [`crop`, 1] of the photo's,
    mirrored with probability ½ when `hflip`, resized to the working size. Items are
    dicts: ``image`` 3×S×S, ``mask`` and ``prior`` 1×S×S (float in [0, 1]; the mask is
    area coverage of the > 128 mask), and ``index``.
    """

    def __init__(self, data: FolderDataset, keys: Sequence[str], size: int, *, crop: float = 1.0,
                 hflip: bool = False, seed: int = 0):
        if not 0 < crop <= 1:
            raise ValueError(f"crop: expected a share in (0, 1], got {crop}")
        self.data, self.keys, self.size = data, list(keys), size
        self.crop, self.hflip, self.seed = crop, hflip, seed

    def __len__(self) -> int:
        return len(self.keys)

    def planes(self, key: str) -> dict[str, np.ndarray]:
        """The full-size arrays of one key: image H×W×3, mask and prior H×W, all in [0, 1]."""
        out = {"image": read_image(self.data.images[key])}
        if self.data.mask_files:
            out["mask"] = read_mask(self.data.mask_files[key]).astype(np.float32)
        if self.data.prior_files:
            out["prior"] = read_map(self.data.prior_files[key])
        height, width = out["image"].shape[:2]
        for name, plane in out.items():
            if plane.shape[:2] != (height, width):
                path = (self.data.mask_files if name == "mask" else self.data.prior_files)[key]
                raise ValueError(f"{path}: expected a {name} of {height}×{width} like its image, got {plane.shape[:2]}")
        return out

    def files(self, key: str) -> dict[str, Path]:
        out = {"image": self.data.images[key]}
        if self.data.mask_files:
            out["mask"] = self.data.mask_files[key]
        if self.data.prior_files:
            out["prior"] = self.data.prior_files[key]
        return out

    def check(self) -> dict[str, str]:
        """Drop the keys whose files cannot be used, judged from their headers only (fast); returns path: why.

        A photo whose header does not read, or a mask or prior of another size than its
        photo, would stop the run at its first batch: it is listed and left out instead.
        """
        problems, kept = {}, []
        for key in self.keys:
            try:
                sizes = {name: picture_size(path) for name, path in self.files(key).items()}
            except (OSError, SyntaxError, ValueError) as err:
                problems[str(self.data.images[key])] = f"unreadable ({type(err).__name__}: {err})"
                continue
            other = [f"{self.files(key)[name]}: expected {sizes['image'][0]}×{sizes['image'][1]} like its photo, "
                     f"got {size[0]}×{size[1]}" for name, size in sizes.items() if size != sizes["image"]]
            if other:
                problems[str(self.data.images[key])] = "; ".join(other)
            else:
                kept.append(key)
        self.keys = kept
        return problems

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Tensor | int | str]:
        """A view, or an `UNUSABLE` item when a file fails to read (the loop skips and reports it)."""
        epoch, index = item
        rng = np.random.default_rng([self.seed, epoch, index])
        try:
            planes = self.planes(self.keys[index])
        except (SalplugError, OSError, ValueError) as err:
            return {UNUSABLE: f"{self.data.images[self.keys[index]]}: {err}", "index": index}
        height, width = planes["image"].shape[:2]
        share = rng.uniform(self.crop, 1.0, size=2)
        ch, cw = max(1, round(height * share[0])), max(1, round(width * share[1]))
        top, left = int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1))
        mirror = self.hflip and rng.random() < 0.5
        out: dict[str, Tensor | int] = {"index": index}
        for name, plane in planes.items():
            view = square(plane[top : top + ch, left : left + cw], self.size)
            if mirror:
                view = view[:, ::-1]
            tensor = torch.from_numpy(np.ascontiguousarray(view, dtype=np.float32))
            out[name] = tensor.permute(2, 0, 1) if tensor.ndim == 3 else tensor[None]
        return out
