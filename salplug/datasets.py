"""The SOD dataset layout: ``DIR/images``, ``DIR/masks``, ``DIR/priors/<name>``, paired by stem.

Pairing reports every mismatch (an image without a mask, a mask without an image, two
files with one stem) instead of silently scoring a different set of images.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SalplugError
from .io import IMAGE_SUFFIXES


class DatasetError(SalplugError, ValueError):
    """A dataset folder that does not have the expected layout."""


def index_folder(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Image files of a folder by stem, and the files that share a stem with another."""
    by_stem: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES:
            by_stem.setdefault(path.stem, []).append(path)
    files = {stem: paths[0] for stem, paths in by_stem.items() if len(paths) == 1}
    clashes = {
        str(path): f"stem {stem!r} is shared with {', '.join(str(p) for p in paths if p != path)}"
        for stem, paths in by_stem.items()
        if len(paths) > 1
        for path in paths
    }
    return files, clashes


HALVES = ("even", "odd")


def half_of(stems: Iterable[str], half: str | None) -> list[str]:
    """Sorted stems, or one fixed half of them: ``even`` = indices 0, 2, 4, …, ``odd`` = 1, 3, 5, ….

    The one split rule of the project: methods that train on masks train on one half and
    are scored on the other (`salplug eval --half`), so no figure comes from training images.
    """
    ordered = sorted(stems)
    if half is None:
        return ordered
    if half not in HALVES:
        raise DatasetError(f"half: expected one of {', '.join(HALVES)} or none, got {half!r}")
    return ordered[HALVES.index(half) :: 2]


@dataclass
class SODDataset:
    """Images and masks of one benchmark split, with the prior folders beside them."""

    root: Path
    half: str | None = None
    """Score only this half of the paired stems (see `half_of`); None: all."""
    images: dict[str, Path] = field(init=False)
    masks: dict[str, Path] = field(init=False)
    problems: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        half_of([], self.half)  # a bad `half` fails here, before any folder is read
        for sub in ("images", "masks"):
            if not (self.root / sub).is_dir():
                raise DatasetError(
                    f"dataset {self.root}: expected a folder {self.root / sub} "
                    f"(layout: DIR/images, DIR/masks, DIR/priors/<name>)"
                )
        self.images, image_clashes = index_folder(self.root / "images")
        self.masks, mask_clashes = index_folder(self.root / "masks")
        self.problems = {**image_clashes, **mask_clashes}
        for key in sorted(self.images.keys() - self.masks.keys()):
            self.problems[str(self.images[key])] = "image without a mask"
        for key in sorted(self.masks.keys() - self.images.keys()):
            self.problems[str(self.masks[key])] = "mask without an image"

    @property
    def keys(self) -> list[str]:
        """Stems that have both an image and a mask (of the chosen half, if any)."""
        return half_of(self.images.keys() & self.masks.keys(), self.half)

    def prior_names(self) -> list[str]:
        folder = self.root / "priors"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def prior_folder(self, name: str) -> Path:
        folder = self.root / "priors" / name
        if not folder.is_dir():
            names = ", ".join(self.prior_names()) or "none"
            raise DatasetError(f"dataset {self.root}: no prior folder {folder} (priors here: {names})")
        return folder
