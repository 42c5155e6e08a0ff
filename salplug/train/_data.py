"""Training samples read from a `FolderDataset` in DataLoader workers, augmented reproducibly.

Each sample is addressed by ``(epoch, index)`` and draws its augmentation from a generator
seeded by ``(seed, epoch, index)``: the same views come out whatever the number of workers
and whether or not a run was interrupted and resumed, so a resumed run ends with the same
weights as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from salplug.data._datasets import FolderDataset
from salplug.train._parallel import SINGLE, Group, shard
from salplug.data._io import read_image, read_map, read_mask, square


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

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Tensor | int]:
        epoch, index = item
        rng = np.random.default_rng([self.seed, epoch, index])
        planes = self.planes(self.keys[index])
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
