"""A grid evaluation (datasets × methods): which maps pair with which masks, known before any
scoring, then each (method, dataset) cell scored once and cached by what it scores.

Pairing follows PySODEvalToolkit: a map pairs with the mask of the same stem (after the
dataset's map prefix and suffix); a map of another size is resized to its mask and
counted; masks without a map are *missing* (the row is partial), maps without a mask are
*extra* (ignored). A cell of stored maps is cached under a digest of every map and mask it
reads, the metric set and the salplug version, so a grid run again scores only the cells
whose files changed, and a method added to a grid scores that method alone.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from salplug.data._datasets import SODDataset, index_folder
from salplug.data._io import atomic_write, file_sha256
from salplug.host._factory import list_components
from salplug.metrics._evaluation import ChainPass, MethodScores, score_chain, score_folder
from salplug.metrics._outputs import GridResult, Pairing
from salplug.pipeline._chain import Chain

CACHE_FORMAT = 1
"""Bumped when a cached cell's layout changes, so older entries are never read."""


@dataclass
class GridDataset:
    """One dataset of the grid, with the prefix and suffix its maps' names carry around the image stem."""

    name: str
    data: SODDataset
    map_prefix: str = ""
    map_suffix: str = ""
    _mask_sizes: dict[str, tuple[int, int] | None] = field(default_factory=dict, repr=False)
    _mask_digests: dict[str, str] = field(default_factory=dict, repr=False)

    def mask_size(self, key: str) -> tuple[int, int] | None:
        if key not in self._mask_sizes:
            self._mask_sizes[key] = image_size(self.data.masks[key])
        return self._mask_sizes[key]

    def mask_digest(self, key: str) -> str:
        if key not in self._mask_digests:
            self._mask_digests[key] = file_sha256(self.data.masks[key])
        return self._mask_digests[key]

    def key_of(self, stem: str) -> str | None:
        """The image key of a map's stem, or None when the stem lacks the prefix or suffix."""
        prefix, suffix = self.map_prefix, self.map_suffix
        if len(stem) <= len(prefix) + len(suffix) or not stem.startswith(prefix) or not stem.endswith(suffix):
            return None
        return stem[len(prefix):len(stem) - len(suffix)]


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) from a file's header without decoding it; None where the header does not say."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            width, height = picture.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    return height, width


@dataclass
class MapsCell:
    """One method's stored maps on one dataset, paired before scoring.

    `folder` is None where the method has no folder for the dataset; `problems` names
    files the pairing could not use (two maps of one stem, links leading nowhere).
    """

    dataset: GridDataset
    method: str
    folder: Path | None
    maps: dict[str, Path]
    pairing: Pairing
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> list[str]:
        return [self.method]


def pair_maps(dataset: GridDataset, method: str, folder: str | Path | None) -> MapsCell:
    """Pair a folder of maps with the dataset's masks: matched, missing, extra and resized, each named."""
    keys = dataset.data.keys
    if folder is None or not Path(folder).is_dir():
        pairing = Pairing(matched=0, missing=len(keys), missing_names=tuple(keys))
        return MapsCell(dataset, method, None if folder is None else Path(folder), {}, pairing,
                        {str(folder): "no folder of maps"} if folder is not None else {})
    folder = Path(folder)
    files, problems = index_folder(folder)
    paired, maps, extra = dataset.data.paired, {}, []
    for stem, path in files.items():
        key = dataset.key_of(stem)
        if key is None or key not in paired:
            extra.append(str(path))
        elif key in keys:
            maps[key] = path
    missing = [k for k in keys if k not in maps]
    resized = [k for k in keys if k in maps and image_size(maps[k]) not in (None, dataset.mask_size(k))]
    pairing = Pairing(matched=len(maps), missing=len(missing), extra=len(extra), resized=len(resized),
                      missing_names=tuple(missing), extra_names=tuple(sorted(extra)), resized_names=tuple(resized))
    return MapsCell(dataset, method, folder, maps, pairing, problems)


@dataclass
class ChainCell:
    """A chain run on one dataset's photos: one row, or, with priors, one per prior (and its input with `score_input`)."""

    dataset: GridDataset
    method: str
    chain: Chain
    priors: list[str]
    score_input: bool
    pairings: dict[str, Pairing]

    @property
    def rows(self) -> list[str]:
        return list(self.pairings)


def pair_chain(dataset: GridDataset, method: str, chain: Chain, priors: Sequence[str] = (),
               score_input: bool = False) -> ChainCell:
    """The rows a chain makes on a dataset; with priors, images without a prior map are missing."""
    keys = dataset.data.keys
    pairings: dict[str, Pairing] = {}
    for prior in priors or [None]:
        run = ChainPass.of(dataset.data, chain, method, prior, None)
        rows = ([run.input_name] if score_input else []) + [run.output_name]
        pairing = Pairing(matched=len(keys))
        if prior is not None:
            pairing = pair_maps(dataset, prior, dataset.data.root / "priors" / prior).pairing
            pairing = replace(pairing, extra=0, extra_names=(), resized=0, resized_names=())
        pairings.update({row: pairing for row in rows})
    return ChainCell(dataset, method, chain, list(priors), score_input, pairings)


Cell = MapsCell | ChainCell


def pairing_report(cells: Sequence[Cell], *, limit: int | None = 10) -> list[str]:
    """Lines for a terminal: a table of every (dataset, method) row's counts, then each missing,
    extra and resized file by name (the first `limit` of each kind; None: all)."""
    rows = [("DATASET", "METHOD", "MATCHED", "MISSING", "EXTRA", "RESIZED")]
    named = []
    for cell in cells:
        shown = cell.pairings.items() if isinstance(cell, ChainCell) else [(cell.method, cell.pairing)]
        for row, p in shown:
            rows.append((cell.dataset.name, row, str(p.matched), str(p.missing), str(p.extra), str(p.resized)))
            for word, names in (("missing", p.missing_names), ("extra", p.extra_names), ("resized", p.resized_names)):
                cut = names if limit is None else names[:limit]
                named += [f"{cell.dataset.name} / {row}: {word} {name}" for name in cut]
                if len(cut) < len(names):
                    named.append(f"{cell.dataset.name} / {row}: {len(names) - len(cut)} more {word} (-v lists them)")
        if isinstance(cell, MapsCell):
            named += [f"{cell.dataset.name} / {cell.method}: {path}: {why}" for path, why in cell.problems.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return ["pairing (masks with a map / without / maps without a mask / maps resized to their mask):",
            *table, *named]


class ScoreCache:
    """Scored cells of stored maps as JSON files in `folder`, by a digest of everything a score depends on."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def key(self, cell: MapsCell, metrics: Sequence[str] | None) -> str:
        """Digest of the salplug version, the metric set, and each scored image's key, mask and map content."""
        names = sorted(metrics) if metrics is not None else sorted(list_components("metric"))
        digest = hashlib.sha256(json.dumps({
            "format": CACHE_FORMAT, "salplug": importlib.metadata.version("salplug"), "metrics": names,
        }).encode())
        for key in sorted(cell.maps):
            digest.update(json.dumps([key, cell.dataset.mask_digest(key), file_sha256(cell.maps[key])]).encode())
        return digest.hexdigest()

    def get(self, key: str, cell: MapsCell) -> MethodScores | None:
        """The cached scores, with the cell's own name and map files; None when there are none (or unreadable)."""
        try:
            entry = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return MethodScores(cell.method, entry["scores"], entry["curves"], entry["count"], entry["failed"],
                            per_image=entry["per_image"],
                            maps={k: str(cell.maps[k]) for k in entry["scored"] if k in cell.maps})

    def put(self, key: str, scores: MethodScores) -> None:
        entry = {"scores": scores.scores, "curves": scores.curves, "count": scores.count, "failed": scores.failed,
                 "per_image": scores.per_image, "scored": sorted(scored_keys(scores) or ())}
        with atomic_write(self.folder / f"{key}.json") as tmp:
            tmp.write_text(json.dumps(entry), encoding="utf-8")


def scored_keys(scores: MethodScores) -> set[str] | None:
    """Keys of the images scored, from the per-image scores; None when no metric keeps any."""
    keys = [set(values) for values in scores.per_image.values()]
    return set().union(*keys) if keys else None


def _result(cell: Cell, scores: MethodScores, planned: Pairing) -> GridResult:
    """The grid cell of `scores`: images that failed while scoring join the planned missing ones."""
    data = cell.dataset.data
    scored = scored_keys(scores)
    if scored is None:
        scored = set(data.keys) - set(planned.missing_names) if scores.count == planned.matched else set()
    missing = tuple(k for k in data.keys if k not in scored)
    pairing = replace(planned, matched=len(data.keys) - len(missing), missing=len(missing), missing_names=missing)
    return GridResult.from_scores(cell.dataset.name, scores, pairing, images=data.images, masks=data.masks)


@dataclass
class GridRun:
    """How the cells are scored: the metrics, batch size, where chain maps are saved, the cache, the scorers.

    `score_maps` and `score_run` take `score_folder`'s and `score_chain`'s arguments (the
    Ray engine passes its own).
    """

    metrics: Sequence[str] | None = None
    batch_size: int = 8
    save_maps: Path | None = None
    cache: ScoreCache | None = None
    score_maps: Callable[..., MethodScores] = score_folder
    score_run: Callable[..., list[MethodScores]] = score_chain
    scored: list[tuple[str, str]] = field(default_factory=list)
    """(dataset, method) of the cells scored, not read from the cache."""
    raw: dict[tuple[str, str], MethodScores] = field(default_factory=dict)
    """Every row's scores by (dataset, row name), for paired comparisons."""

    def cell(self, cell: Cell) -> list[GridResult]:
        """The rows of one cell."""
        if isinstance(cell, ChainCell):
            return self._chain(cell)
        if not cell.maps:
            scores = MethodScores(cell.method)
            self.raw[cell.dataset.name, cell.method] = scores
            data = cell.dataset.data
            return [GridResult.from_scores(cell.dataset.name, scores, cell.pairing, images=data.images, masks=data.masks)]
        key = self.cache.key(cell, self.metrics) if self.cache is not None else None
        scores = self.cache.get(key, cell) if key is not None else None
        if scores is None:
            scores = self.score_maps(cell.dataset.data, cell.folder, cell.method, maps=cell.maps,
                                     metrics=self.metrics, batch_size=self.batch_size)
            self.scored.append((cell.dataset.name, cell.method))
            if key is not None:
                self.cache.put(key, scores)
        self.raw[cell.dataset.name, cell.method] = scores
        return [_result(cell, scores, cell.pairing)]

    def _chain(self, cell: ChainCell) -> list[GridResult]:
        save = self.save_maps / cell.dataset.name if self.save_maps is not None else None
        results = self.score_run(cell.dataset.data, cell.chain, cell.method, priors=cell.priors,
                                 score_input=cell.score_input, metrics=self.metrics, batch_size=self.batch_size,
                                 save_maps=save)
        self.scored += [(cell.dataset.name, r.name) for r in results]
        rows = []
        for scores in results:
            self.raw[cell.dataset.name, scores.name] = scores
            rows.append(_result(cell, scores, cell.pairings[scores.name]))
        return rows


def score_grid(cells: Sequence[Cell], run: GridRun) -> list[GridResult]:
    """Every row of every cell, datasets in the order given, each dataset's methods in the order given."""
    return [row for cell in cells for row in run.cell(cell)]
