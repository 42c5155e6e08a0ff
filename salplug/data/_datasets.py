"""The SOD dataset layout: ``DIR/images``, ``DIR/masks``, ``DIR/priors/<name>``, paired by stem.

Pairing reports every mismatch (an image without a mask, a mask without an image, two
files with one stem) instead of silently scoring a different set of images.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from salplug.errors import SalplugError
from salplug.data._io import IMAGE_SUFFIXES


class DatasetError(SalplugError, ValueError):
    """A dataset folder that does not have the expected layout."""


def index_folder(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Image files of a folder by stem, and the problems: files sharing a stem, links leading nowhere."""
    by_stem: dict[str, list[Path]] = {}
    problems: dict[str, str] = {}
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError as err:
        raise DatasetError(f"cannot list {folder}: {err.strerror or err}") from None
    for path in entries:
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.is_file():
            by_stem.setdefault(path.stem, []).append(path)
        elif path.is_symlink():
            problems[str(path)] = "a symbolic link that loops or leads to nothing"
        elif not path.is_dir():
            problems[str(path)] = "not a regular file"
    files = {stem: paths[0] for stem, paths in by_stem.items() if len(paths) == 1}
    problems.update({
        str(path): f"stem {stem!r} is shared with {', '.join(str(p) for p in paths if p != path)}"
        for stem, paths in by_stem.items()
        if len(paths) > 1
        for path in paths
    })
    return files, problems


def subset(stems: Iterable[str], count: int | None) -> list[str]:
    """`count` sorted stems spread evenly over the sorted set (every (len/count)-th), or all when None.

    Evenly spaced rather than the first N, so a subset of a set sorted by source (DUTS-TR's
    stems follow ImageNet's synsets) covers every source.
    """
    ordered = sorted(stems)
    if count is None or count >= len(ordered):
        return ordered
    if count < 1:
        raise DatasetError(f"subset: expected a count of at least 1, got {count}")
    return [ordered[(i * len(ordered)) // count] for i in range(count)]


def hold_out(stems: Iterable[str], count: int, subset_count: int | None = None) -> tuple[list[str], list[str]]:
    """(training, held-out) stems: `count` held out evenly spaced (`subset`), then `subset_count` of the rest.

    The trainers that validate on their own dataset (LPS, LDPS) share this rule, so one
    held-out folder serves them all.
    """
    stems = list(stems)
    held = subset(stems, count) if count else []
    left = set(held)
    return subset([s for s in stems if s not in left], subset_count), held


def folds(stems: Iterable[str], k: int) -> list[list[str]]:
    """`k` folds of the sorted stems by index modulo `k`: with k = 2, the even and odd indices."""
    if k < 2:
        raise DatasetError(f"folds: expected k of at least 2, got {k}")
    ordered = sorted(stems)
    return [ordered[i::k] for i in range(k)]


def split(stems: Iterable[str], k: int, fold: int, part: str) -> list[str]:
    """The stems of fold `fold` (``part="held"``) or of every other fold (``part="train"``)."""
    if not 0 <= fold < k:
        raise DatasetError(f"split: expected a fold in 0..{k - 1}, got {fold}")
    if part not in ("train", "held"):
        raise DatasetError(f"split: expected part 'train' or 'held', got {part!r}")
    every = folds(stems, k)
    return every[fold] if part == "held" else sorted(s for i, f in enumerate(every) if i != fold for s in f)


def held_fold(root: str | Path, k: int, fold: int) -> set[str]:
    """Fold `fold` of `k` (`split`) over every image with a mask in dataset folder `root`.

    How fold models are cut (the baseline's ``fold``), so a trainer restricted to the images a
    fold model never saw gets the same stems even when its own inputs (prior maps) lack some.
    """
    return set(split(FolderDataset(Path(root), masks=True).keys, k, fold, "held"))


@dataclass
class FolderDataset:
    """Training data: ``DIR/images``, optional ``DIR/masks`` and priors, paired by stem.

    Priors come from ``DIR/priors/<prior>`` or from a folder given apart (`priors_dir`).
    Images lacking a wanted mask or prior are left out and listed in `problems`, so a
    trainer can report them rather than train on a different set without a word.
    """

    root: Path
    masks: bool = False
    """Require a mask for every image used."""
    prior: str | None = None
    """Name of a prior folder under ``DIR/priors`` whose maps every image used needs."""
    priors_dir: Path | None = None
    """A prior folder elsewhere (overrides `prior`)."""
    images: dict[str, Path] = field(init=False)
    mask_files: dict[str, Path] = field(init=False)
    prior_files: dict[str, Path] = field(init=False)
    problems: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not (self.root / "images").is_dir():
            raise DatasetError(f"dataset {self.root}: expected a folder {self.root / 'images'} "
                               "(layout: DIR/images, optional DIR/masks and DIR/priors/<name>)")
        self.images, self.problems = index_folder(self.root / "images")
        self.mask_files, self.prior_files = {}, {}
        if self.masks:
            self.mask_files = self._paired(self.root / "masks", "mask")
        folder = Path(self.priors_dir) if self.priors_dir is not None else (
            self.root / "priors" / self.prior if self.prior is not None else None)
        if folder is not None:
            self.prior_files = self._paired(folder, "prior map")

    def _paired(self, folder: Path, what: str) -> dict[str, Path]:
        if not folder.is_dir():
            raise DatasetError(f"dataset {self.root}: expected a {what} folder {folder}, got none")
        files, clashes = index_folder(folder)
        self.problems.update(clashes)
        for stem in sorted(self.images.keys() - files.keys()):
            path = str(self.images[stem])
            reason = f"image without a {what} in {folder}"
            self.problems[path] = f"{self.problems[path]}; {reason}" if path in self.problems else reason
        return files

    @property
    def keys(self) -> list[str]:
        """Sorted stems that have everything asked for."""
        keys = set(self.images)
        if self.masks:
            keys &= self.mask_files.keys()
        if self.prior is not None or self.priors_dir is not None:
            keys &= self.prior_files.keys()
        return sorted(keys)


def read_subset(path: str | Path) -> frozenset[str]:
    """Image stems listed in a text file, one per line; blank lines and ``#`` comments are skipped.

    How a dataset is scored on some of its images (a held-out split, a hard subset): the
    same file, checked in beside the results, names the images every method was scored on.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"subset {path}: expected a text file of image stems, got {err}") from None
    stems = frozenset(line.split("#", 1)[0].strip() for line in text.splitlines()) - {""}
    if not stems:
        raise DatasetError(f"subset {path}: expected image stems, one per line, got none")
    return stems


@dataclass
class SODDataset:
    """Images and masks of one benchmark split, with the prior folders beside them.

    The folders default to ``DIR/images`` and ``DIR/masks``; a dataset laid out otherwise
    (PySODEvalToolkit's ``Image``/``Mask``, say) names them with `image_folder` and `mask_folder`.
    """

    root: Path
    subset: frozenset[str] | None = None
    """Score only these stems (see `read_subset`); None: all."""
    image_folder: Path | None = None
    mask_folder: Path | None = None
    images: dict[str, Path] = field(init=False)
    masks: dict[str, Path] = field(init=False)
    problems: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.image_folder = Path(self.image_folder) if self.image_folder is not None else self.root / "images"
        self.mask_folder = Path(self.mask_folder) if self.mask_folder is not None else self.root / "masks"
        for folder in (self.image_folder, self.mask_folder):
            if not folder.is_dir():
                raise DatasetError(
                    f"dataset {self.root}: expected a folder {folder} "
                    f"(layout: DIR/images, DIR/masks, DIR/priors/<name>)"
                )
        self.images, image_clashes = index_folder(self.image_folder)
        self.masks, mask_clashes = index_folder(self.mask_folder)
        self.problems = {**image_clashes, **mask_clashes}
        for key in sorted(self.images.keys() - self.masks.keys()):
            self.problems[str(self.images[key])] = "image without a mask"
        for key in sorted(self.masks.keys() - self.images.keys()):
            self.problems[str(self.masks[key])] = "mask without an image"

    @property
    def paired(self) -> set[str]:
        """Stems that have both an image and a mask, in the subset or not."""
        return self.images.keys() & self.masks.keys()

    @property
    def keys(self) -> list[str]:
        """Sorted stems that have both an image and a mask (and are in the subset, if any)."""
        paired = self.paired
        return sorted(paired if self.subset is None else paired & self.subset)

    def prior_names(self) -> list[str]:
        folder = self.root / "priors"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def prior_folder(self, name: str) -> Path:
        folder = self.root / "priors" / name
        if not folder.is_dir():
            names = ", ".join(self.prior_names()) or "none"
            raise DatasetError(f"dataset {self.root}: no prior folder {folder} (priors here: {names})")
        return folder


def link_view(data: FolderDataset, stems: Iterable[str], out: Path, priors: dict[str, Path] | None = None) -> Path:
    """A dataset folder of symbolic links (``OUT/images``, ``OUT/masks``, ``OUT/priors/<name>``) to some stems.

    How a held-out part of a training set is scored with ``salplug eval --dataset OUT``
    without copying data; a prior folder lacking a stem is an error naming both.
    """
    out = Path(out)
    stems = sorted(stems)
    missing = [s for s in stems if s not in data.images or (data.masks and s not in data.mask_files)]
    if missing:
        raise DatasetError(f"view of {data.root}: expected an image and mask for every stem, got none for {missing[:5]}")
    planes = {"images": data.images, **({"masks": data.mask_files} if data.masks else {})}
    for name, folder in (priors or {}).items():
        files, _ = index_folder(Path(folder))
        absent = [s for s in stems if s not in files]
        if absent:
            raise DatasetError(f"view of {data.root}: expected prior {name!r} in {folder} for every stem, got none for {absent[:5]}")
        planes[f"priors/{name}"] = files
    for sub, files in planes.items():
        target = out / sub
        target.mkdir(parents=True, exist_ok=True)
        for stem in stems:
            link = target / files[stem].name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(files[stem].resolve())
    return out
