"""Finding the image files a run reads: files and folders, walked recursively, one key each.

Linked folders are walked like any other, each real folder once. Problems (missing paths,
empty folders, links that loop, pipes and devices, formats that are not read, two files
sharing a key) come back as reasons instead of exceptions, so a run still does everything else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from salplug.data._io import PHOTO_SUFFIXES, UNSUPPORTED_SUFFIXES


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
    """Image files below `root`, following linked folders; folders that cannot be listed, links that
    lead nowhere, files that are not regular and formats that are not read go to `failed`.

    A linked folder is entered once: one that leads back to a folder already walked is passed by,
    so links that loop end.
    """
    items = []
    top = _resolved(root)
    entered = {top}

    def unreadable(err: OSError) -> None:
        failed[str(err.filename)] = f"cannot list this folder: {err.strerror or err}"

    for folder, dirs, files in os.walk(root, onerror=unreadable, followlinks=True):
        here = Path(folder)
        kept = []
        for name in sorted(dirs, key=lambda d: (here / d).is_symlink()):
            real = _resolved(here / name)
            if _is_hidden(name) or real is None or real in exclude or real in entered or top.is_relative_to(real):
                continue
            entered.add(real)
            kept.append(name)
        dirs[:] = kept
        for name in files:
            path = here / name
            suffix = path.suffix.lower()
            if _is_hidden(name) or suffix not in (*PHOTO_SUFFIXES, *UNSUPPORTED_SUFFIXES):
                continue
            if _resolved(path) is None:
                failed[str(path)] = "a symbolic link that loops or leads to nothing"
            elif suffix in UNSUPPORTED_SUFFIXES:
                failed[str(path)] = (f"{UNSUPPORTED_SUFFIXES[suffix]} files are not read; convert it to "
                                     "JPEG or PNG (for instance with ImageMagick: magick in.heic out.png)")
            elif not path.is_file():
                failed[str(path)] = "not a regular file (a pipe, socket or device), so it is not read"
            else:
                items.append(InputItem(path, path.relative_to(root).with_suffix("").as_posix()))
    return items


PNG_GRAY8 = b"\x89PNG\r\n\x1a\n"
"""How every map file starts; its IHDR then says 8 bits, gray (bytes 24 and 25: 8, 0)."""


def _gray8_png(path: Path) -> bool:
    """True for an 8-bit single-channel PNG, the kind of file every map is (a photo rarely is)."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(26)
    except OSError:
        return False
    return head[:8] == PNG_GRAY8 and head[12:16] == b"IHDR" and head[24:26] == b"\x08\x00"


def _earlier_maps(found: list[InputItem], folder: Path) -> set[Path]:
    """Files of `found` that are maps an earlier run wrote into `folder`, itself an input folder.

    A map is ``folder/<key>.png`` or ``folder/steps/<step>/<key>.png`` where another file has
    that key, and an 8-bit gray PNG, so a photo is not taken for a map.
    """
    by_key: dict[str, set[Path]] = {}
    for item in found:
        by_key.setdefault(item.key, set()).add(item.path.absolute())
    maps = set()
    for item in found:
        where = item.path.absolute()
        if where.suffix != ".png" or not where.is_relative_to(folder):
            continue
        parts = where.relative_to(folder).with_suffix("").parts
        keys = ["/".join(parts), *(["/".join(parts[2:])] if len(parts) > 2 and parts[0] == "steps" else [])]
        if any(by_key.get(key, set()) - {where} for key in keys) and _gray8_png(where):
            maps.add(item.path)
    return maps


def collect_inputs(
    inputs: Sequence[str | Path], *, exclude: Iterable[str | Path] = (), maps_in: str | Path | None = None
) -> tuple[list[InputItem], dict[str, str]]:
    """Image files named by `inputs` (files or folders walked recursively), sorted by key.

    A file named twice counts once. Folders in `exclude` are not walked, so maps written
    inside an input folder are never read back as images; `maps_in`, an output folder that is
    also an input folder, has its earlier maps left out (see `_earlier_maps`). Problems come back as
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
                failed[str(path)] = f"no image files in this folder (expected suffixes {', '.join(PHOTO_SUFFIXES)})"
            found.extend(items)
        elif path.exists():
            failed[str(path)] = "not a regular file or folder"
        else:
            failed[str(path)] = "no such file or folder"
    if maps_in is not None:
        written = _earlier_maps(found, Path(maps_in).absolute())
        found = [item for item in found if item.path not in written]
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
