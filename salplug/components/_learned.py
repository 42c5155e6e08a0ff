"""Learned components built from their checkpoint: the architecture the file records, then its weights.

Every trained component repeats one sequence: resolve the ``checkpoint`` field (a shipped tag,
a path or None), take the architecture fields the file records unless the config sets them,
build the network under the config's seed, load the weights, and keep frozen parts (encoders
whose batch-norm statistics must not move) in eval mode while the rest trains.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from salplug.components._shipped import checkpoint_file
from salplug.components._weights import checkpoint_architecture


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block under `seed` and restore the global CPU random state after it.

    Random initialisation inside gives the same network on every build, without changing
    the random numbers the caller draws next.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class Learned:
    """Mixin placed before a component base (``class LPS(Learned, Refiner)``) that builds it from its checkpoint.

    The subclass sets `shipped` (its ``"shipped"`` file under ``<package>/checkpoints``, or a
    mapping of tags to files), `defaults` (architecture fields and their values when neither
    config nor checkpoint sets them), optionally `shaped` (fields that set weight shapes: an
    explicit value may not contradict the file) and `frozen` (submodules kept in eval mode),
    and implements `build(arch)`, which creates the modules. The config has a ``checkpoint``
    field. After construction `arch` holds the architecture, the config records it (so saved
    checkpoints do too) and `card` holds the checkpoint's model card.
    """

    learned = True
    shipped: ClassVar[str | Mapping[str, str]] = {}
    defaults: ClassVar[Mapping[str, Any]] = {}
    shaped: ClassVar[tuple[str, ...]] = ()
    frozen: ClassVar[tuple[str, ...]] = ()
    missing_hint: ClassVar[str] = ""
    """What to do when the shipped checkpoint is not installed (the error's last words)."""

    def __init__(self, config=None, **options: Any):
        super().__init__(config, **options)
        path = self.checkpoint_path()
        owner = f"{self.kind} {self.name!r}"
        self.arch: dict[str, Any] = (checkpoint_architecture(self.config, self.defaults, path, shaped=self.shaped, owner=owner)
                                     if self.defaults else {})
        self.config = self.config.model_copy(update=self.arch)
        self.build(self.arch)
        self.card: dict[str, Any] = {} if path is None else self.load_weights(path)
        self.eval()

    def checkpoint_path(self) -> Path | None:
        """The file to load: the ``checkpoint`` field resolved against the plugin's shipped files."""
        package = type(self).__module__.partition(".")[0]
        return checkpoint_file(self.config.checkpoint, package, self.shipped, owner=f"{self.kind} {self.name!r}",
                               hint=self.missing_hint)

    def build(self, arch: dict[str, Any]) -> None:
        """Create the network's modules for the effective architecture `arch`."""
        raise NotImplementedError

    def train(self, mode: bool = True):
        """Train mode for everything but the `frozen` submodules, whose batch-norm statistics stay fixed."""
        super().train(mode)
        for name in self.frozen:
            getattr(self, name).eval()
        return self
