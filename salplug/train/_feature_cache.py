"""Per-image features of a frozen backbone, kept in memory and on disk.

Training a head on a frozen encoder recomputes the same features every epoch; on a CPU
that forward pass is most of the cost. The cache computes each image's features once
and serves them afterwards, so heads train on CPU in minutes. Entries are keyed by the
image's key (callers give augmented views their own keys, e.g. ``"0003:flip"``) and
live under a folder named after the backbone's class, config and the image size, so a
changed backbone never reads stale features.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from salplug.components._base import Backbone
from salplug.components._contracts import check_image
from salplug.errors import ContractError

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def backbone_digest(backbone: Backbone) -> str:
    """A short name for the backbone's class and config: the cache's folder per backbone."""
    ident = {"class": f"{type(backbone).__module__}.{type(backbone).__qualname__}"}
    ident["config"] = backbone.config.model_dump(mode="json")
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


class FeatureCache:
    """Serve ``backbone(images)`` per key, computing only the keys not seen before."""

    def __init__(self, backbone: Backbone, folder: str | Path | None = None, *, memory: bool = True):
        if any(p.requires_grad for p in backbone.parameters()):
            raise ContractError(
                f"feature cache: expected a frozen backbone (its features must not change), "
                f"got {backbone.name!r} with trainable parameters"
            )
        self.backbone = backbone.eval()
        self.folder = None if folder is None else Path(folder) / backbone_digest(backbone)
        self.memory: dict[tuple[str, int, int], list[Tensor]] | None = {} if memory else None
        self.computed = 0
        """Images passed through the backbone so far (the rest came from the cache)."""

    @staticmethod
    def _path(folder: Path, key: str, height: int, width: int) -> Path:
        name = _SAFE.sub("_", key)
        tag = hashlib.sha256(key.encode()).hexdigest()[:8]
        return folder / f"{height}x{width}" / f"{name}-{tag}.pt"

    def _load(self, key: str, height: int, width: int) -> list[Tensor] | None:
        entry = (key, height, width)
        if self.memory is not None and entry in self.memory:
            return self.memory[entry]
        if self.folder is None:
            return None
        path = self._path(self.folder, key, height, width)
        if not path.is_file():
            return None
        features = torch.load(path, map_location="cpu", weights_only=True)
        if self.memory is not None:
            self.memory[entry] = features
        return features

    def _store(self, key: str, height: int, width: int, features: list[Tensor]) -> None:
        if self.memory is not None:
            self.memory[(key, height, width)] = features
        if self.folder is not None:
            path = self._path(self.folder, key, height, width)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            torch.save(features, partial)
            partial.replace(path)

    @torch.no_grad()
    def __call__(self, images: Tensor, keys: Sequence[str]) -> list[Tensor]:
        """Features per level, ``B×C×h×w`` on the images' device, as ``backbone(images)`` gives them."""
        check_image(images, values=False)
        if len(keys) != images.shape[0]:
            raise ContractError(f"feature cache: expected {images.shape[0]} keys for the batch, got {len(keys)}")
        height, width = images.shape[-2:]
        found = [self._load(key, height, width) for key in keys]
        missing = [i for i, features in enumerate(found) if features is None]
        if missing:
            computed = self.backbone(images[missing])
            self.computed += len(missing)
            for row, index in enumerate(missing):
                features = [level[row].to("cpu", copy=True) for level in computed]
                self._store(keys[index], height, width, features)
                found[index] = features
        levels = zip(*found)
        return [torch.stack(level).to(images.device) for level in levels]
