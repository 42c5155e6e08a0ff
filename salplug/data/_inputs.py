"""Finding the image files a run reads: files and folders, walked recursively, one key each.

Problems (missing paths, empty folders, links that loop, two files sharing a key) come back
as reasons instead of exceptions, so a run still does everything else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from salplug.data._io import IMAGE_SUFFIXES


@dataclass(frozen=True)
class InputItem:
    """One image file and its key: the output's path below the output folder, without suffix."""

    path: Path
    key: str


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _resolved(path: Path) -> Path | None:
    """The real path, or None for a symbolic link that loops or leads nowhere."""
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None


def _walk(root: Path, exclude: Sequence[Path], failed: dict[str, str]) -> list[InputItem]:
    """Image files below `root`; folders that cannot be listed and links that lead nowhere go to `failed`."""
    items = []

    def unreadable(err: OSError) -> None:
        failed[str(err.filename)] = f"cannot list this folder: {err.strerror or err}"

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not _is_hidden(d) and _resolved(here / d) not in exclude]
        for name in files:
            path = here / name
            if _is_hidden(name) or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if _resolved(path) is None:
                failed[str(path)] = "a symbolic link that loops or leads to nothing"
            else:
                items.append(InputItem(path, path.relative_to(root).with_suffix("").as_posix()))
    return items


def collect_inputs(
    inputs: Sequence[str | Path], *, exclude: Iterable[str | Path] = ()
) -> tuple[list[InputItem], dict[str, str]]:
    """Image files named by `inputs` (files or folders walked recursively), sorted by key.

    A file named twice counts once. Folders in `exclude` are not walked, so maps written
    inside an input folder are never read back as images. Problems come back as
    ``{path: reason}`` instead of raising, so the caller can run everything else: missing
    paths, folders holding no images, and files sharing a key (their maps would collide).
    """
    skip = [Path(p).resolve() for p in exclude]
    found: list[InputItem] = []
    failed: dict[str, str] = {}
    for raw in inputs:
        path = Path(raw)
        if path.is_symlink() and _resolved(path) is None:
            failed[str(path)] = "a symbolic link that loops or leads to nothing"
        elif path.is_file():
            found.append(InputItem(path, path.stem))
        elif path.is_dir():
            problems = len(failed)
            items = _walk(path, skip, failed)
            if not items and len(failed) == problems:
                failed[str(path)] = f"no image files in this folder (expected suffixes {', '.join(IMAGE_SUFFIXES)})"
            found.extend(items)
        elif path.exists():
            failed[str(path)] = "not a regular file or folder"
        else:
            failed[str(path)] = "no such file or folder"
    by_key: dict[str, list[InputItem]] = {}
    seen: set[Path] = set()
    for item in found:
        if item.path.resolve() not in seen:
            seen.add(item.path.resolve())
            by_key.setdefault(item.key, []).append(item)
    unique = []
    for key, group in sorted(by_key.items()):
        if len(group) == 1:
            unique.append(group[0])
            continue
        for item in group:
            others = ", ".join(str(o.path) for o in group if o is not item)
            failed[str(item.path)] = f"key {key!r} is also the key of {others}; their maps would overwrite each other"
    return unique, failed
