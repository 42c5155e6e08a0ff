"""Which weights files a component read while it was built, by content hash.

Weight tags resolve through the environment (``$SALPLUG_WEIGHTS_DIR``), so two runs of one
chain spec can load different encoder weights under the same checkpoint. Every weights file
read is noted with its sha256; the component built around it keeps the list
(`Component.weight_files`), and a run's manifest records it beside the maps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from salplug.data._io import file_sha256

_OPEN: ContextVar[tuple[dict[str, str | None], ...]] = ContextVar("salplug_weight_files", default=())


def note_file(path: str | Path) -> str:
    """Hash a weights file about to be loaded and note it in every open `noting` block; returns the hash."""
    digest = file_sha256(path)
    note(str(Path(path).resolve()), digest)
    return digest


def note(source: str, digest: str | None) -> None:
    """Note weights from `source` (a path, or a download with no file: `digest` None)."""
    for files in _OPEN.get():
        files[source] = digest


@contextlib.contextmanager
def noting() -> Iterator[dict[str, str | None]]:
    """Collect the weights noted inside the block (blocks nest: an outer one sees an inner one's files)."""
    files: dict[str, str | None] = {}
    token = _OPEN.set((*_OPEN.get(), files))
    try:
        yield files
    finally:
        _OPEN.reset(token)
