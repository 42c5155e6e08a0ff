"""`salplug train mijr`: fit the pool on a labelled dataset's photos and base maps, resumably, in worker processes.

The paper's pool is 5,000 DUTS-TR images. Fitting one means analysing every image (superpixels,
proposals, two CRFs, a backbone pass: about 0.6 s each on one core) and aligning each filter
image with its nearest labelled neighbours (about 0.5 s per pair), so the work is cut into
parts written beside `out` (`<stem>.parts/`): a run killed at any point continues with
`--resume` from the parts already written, and `workers` processes share them.

Masks serve the pair filter's Table I labels and the pool's true labels (`pool_labels: masks`,
an upper bound); the retrieved instances' labels of the default refiner are the pseudo GT
built from the base maps, as the paper's.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from torch import Tensor

import salplug
from salplug.components import input_field, write_payload
from salplug.data import (
    DatasetError,
    FolderDataset,
    held_fold,
    read_image,
    read_map,
    read_mask,
    subset,
)
from salplug.train import log

from .analysis import Record
from .pool import PoolImage, Projection
from .refiner import MIJR
from .retrieval import describe

CHUNK = 50
"""Pool images per analysis part; part i holds pool images i, i + parts, i + 2·parts, … (spread over the pool)."""
PAIR_CHUNK = 20
"""Filter images per pairs part."""

OUT_OF_FOLD = "salplug baseline out-of-fold --data \"$SALPLUG_DATA/duts-tr\" -o runs/baseline/duts-tr-oof"
"""How to make the default prior maps: the baseline plugin's fold models map each image they never saw."""



def pool_images(data: FolderDataset, stems: list[str]) -> list[PoolImage]:
    """Pool entries of `stems`: photo, base map (the dataset's prior) and mask, checked to share one size."""
    out = []
    for stem in stems:
        image = read_image(data.images[stem])
        saliency, mask = read_map(data.prior_files[stem]), read_mask(data.mask_files[stem])
        for name, array in (("base map", saliency), ("mask", mask)):
            if array.shape != image.shape[:2]:
                raise DatasetError(f"mijr training: expected the {name} of {stem} at {image.shape[:2]}, got {array.shape}")
        out.append(PoolImage(stem, image, saliency, mask))
    return out


def pool_stems(data: FolderDataset, pool_size: int | None, pool_fold: int | None, pool_folds: int) -> tuple[list[str], list[str]]:
    """(pool, left out): the pool's stems among `data`'s images (of fold `pool_fold` only, when given), and the rest of them."""
    candidates = data.keys
    if pool_fold is not None:
        fold = held_fold(data.root, pool_folds, pool_fold)
        candidates = [k for k in candidates if k in fold]
    stems = subset(candidates, pool_size)
    chosen = set(stems)
    return stems, [k for k in sorted(candidates) if k not in chosen]


_worker: dict[str, Any] = {}
"""Per worker process: the refiner (its encoder loaded once) and the dataset index."""


def _start_worker(options: dict[str, Any], root: str, maps: str, threads: int, refiner: MIJR | None = None) -> None:
    torch.set_num_threads(max(threads, 1))
    _worker["refiner"] = MIJR(**options) if refiner is None else refiner
    _worker["data"] = FolderDataset(Path(root), masks=True, priors_dir=Path(maps))


def _analyse(stems: list[str], projection: Projection | None) -> tuple[list[Record], Tensor]:
    """Records of `stems` (projected when a projection is given) and their scene descriptors."""
    refiner, data = _worker["refiner"], _worker["data"]
    with torch.no_grad():
        records = refiner.analyse_pool(pool_images(data, stems))
    if projection is not None:
        records = [projection.project(r) for r in records]
    return records, describe([r.gray for r in records])


def _analysis_part(job: tuple[list[str], Projection | None, str | None]) -> tuple[list[Record], Tensor] | None:
    """Analyse one part; write it to `path` (then return nothing) or return it (the projection sample)."""
    stems, projection, path = job
    records, descriptors = _analyse(stems, projection)
    if path is None:
        return records, descriptors
    _write_part(path, records, descriptors)
    return None


def _pairs_part(job: tuple[list[tuple[Record, list[Record]]], str]) -> None:
    """Align each filter image with its neighbours and write the filter's rows of the part."""
    work, path = job
    refiner = _worker["refiner"]
    examples = [refiner.pair_examples(target, other) for target, others in work for other in others]
    write_payload([tuple(e) for e in examples], path)


def _write_part(path: str | Path, records: list[Record], descriptors: Tensor) -> None:
    write_payload({"records": [r.to_state() for r in records], "descriptors": descriptors}, path)


def _read_part(path: Path) -> tuple[list[Record], Tensor]:
    part = torch.load(path, weights_only=True)
    return [Record.from_state(s) for s in part["records"]], part["descriptors"]


class MIJRTrainer(salplug.Trainer):
    """Fit an MIJR pool on a labelled dataset: analysis of every pool image, the feature projection, the pair filter."""

    name = "mijr"
    example_config = {"pool_size": 8, "filter_images": 4, "projection_images": 4, "size": 64, "segments": 40, "proposals": 12, "neighbours": 3, "workers": 0, "backbone_weights": None}

    class Config(salplug.ComponentConfig):
        data: str = input_field(default="$SALPLUG_DATA/duts-tr", description="Dataset folder with images/ and masks/.")
        maps: str = input_field(default="runs/baseline/duts-tr-oof",
                                description="Base maps of those images, from a detector that never trained on them.",
                                how=f"make them with: {OUT_OF_FOLD}")
        pool_size: int | None = Field(default=5000, ge=2, description="Pool images, evenly spaced over the sorted stems (paper: 5,000; None: all).")
        pool_fold: int | None = Field(default=None, ge=0, description="Draw the pool from fold k of `pool_folds` only (salplug.data._datasets.held_fold), "
                                      "the images a fold-k detector never trained on: pair it with backbone 'baseline' and weights 'foldk'.")
        pool_folds: int = Field(default=2, ge=2, description="Folds of `pool_fold` (the baseline's out-of-fold models use 2).")
        filter_images: int = Field(default=500, ge=2, description="Pool images aligned with their neighbours to train the pair filter (evenly spaced).")
        projection_images: int = Field(default=200, ge=1, description="Pool images whose raw instance features fit the PCA.")
        out: str = Field(default="runs/mijr/pool.pt", description="Pool index to write; its parts go beside it (<stem>.parts/).")
        resume: bool = Field(default=False, description="Keep the parts a previous run of the same plan wrote (else they are cleared).")
        workers: int = Field(default=2, ge=0, description="Worker processes (0: all work in this process).")
        backbone: str = Field(default="mobilenetv2_100", description="Registry backbone of the instance features.")
        backbone_weights: str | None = Field(default="imagenet", description="Backbone weight tag (None: random, for tests).")
        size: int = Field(default=256, ge=64, multiple_of=32, description="Working size.")
        segments: int = Field(default=500, ge=8, description="SLIC superpixels per image.")
        proposals: int = Field(default=100, ge=1, description="Proposals per image (V).")
        neighbours: int = Field(default=5, ge=1, description="Nearest labelled pool images each filter image is aligned with.")
        seed: int = Field(default=0, description="Seed of the filter.")
        threads: int = Field(default=1, ge=0, description="torch threads per process (0: torch's default).")

    def _refiner_options(self) -> dict[str, Any]:
        cfg = self.config
        return {"backbone": cfg.backbone, "backbone_weights": cfg.backbone_weights, "size": cfg.size,
                "segments": cfg.segments, "proposals": cfg.proposals, "neighbours": cfg.neighbours, "seed": cfg.seed}

    def _parts(self, plan: dict[str, Any]) -> Path:
        """The parts folder, cleared unless resuming the same plan."""
        out = Path(self.config.out)
        parts = out.with_name(f"{out.stem}.parts")
        written = parts / "plan.json"
        if parts.exists() and self.config.resume:
            if not written.exists() or json.loads(written.read_text()) != plan:
                raise DatasetError(f"mijr training: --resume expected the parts in {parts} to follow this run's plan, "
                                   f"they follow another (different data or settings); leave out --resume to start over")
            return parts
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
        written.write_text(json.dumps(plan, indent=1))
        return parts

    def run(self) -> Path:
        cfg = self.config
        start = time.time()
        data = FolderDataset(Path(cfg.data), masks=True, priors_dir=Path(cfg.maps))
        for path, reason in sorted(data.problems.items()):
            log(f"mijr: left out {path}: {reason}")
        stems, _ = pool_stems(data, cfg.pool_size, cfg.pool_fold, cfg.pool_folds)
        count = -(-len(stems) // CHUNK)
        chunks = [stems[i::count] for i in range(count)]
        sample = -(-min(cfg.projection_images, len(stems)) // CHUNK)
        plan = {"data": cfg.data, "maps": cfg.maps, "fold": [cfg.pool_fold, cfg.pool_folds], "stems": len(stems), "first": stems[:3], "chunk": CHUNK,
                "projection_parts": sample, "filter_images": cfg.filter_images, **self._refiner_options()}
        parts = self._parts(plan)
        refiner = MIJR(**self._refiner_options())
        with _mapper(cfg.workers, (self._refiner_options(), cfg.data, cfg.maps, cfg.threads), refiner) as run_map:
            projection_file = parts / "projection.pt"
            if not projection_file.exists():
                raw = run_map(_analysis_part, [(chunks[i], None, None) for i in range(sample)])
                projection = refiner.fit_projection([r for records, _ in raw for r in records])
                for i, (records, descriptors) in enumerate(raw):
                    _write_part(parts / f"records-{i:04d}.pt", [projection.project(r) for r in records], descriptors)
                write_payload({"mean": projection.mean, "components": projection.components}, projection_file)
                log(f"mijr: projection fitted on {sum(len(c) for c in chunks[:sample])} pool images")
            projection = Projection(**torch.load(projection_file, weights_only=True))
            todo = [i for i in range(count) if not (parts / f"records-{i:04d}.pt").exists()]
            log(f"mijr: analysing {sum(len(chunks[i]) for i in todo)} of {len(stems)} pool images "
                f"({count - len(todo)} of {count} parts already written)")
            run_map(_analysis_part, [(chunks[i], projection, str(parts / f"records-{i:04d}.pt")) for i in todo])
            records, descriptors = self._gather(parts, chunks)
            log(f"mijr: {len(records)} pool images analysed ({time.time() - start:.0f}s so far)")
            index = {r.key: i for i, r in enumerate(records)}
            chosen = [index[s] for s in subset(stems, cfg.filter_images)]
            neighbours = refiner.filter_neighbours(records, descriptors, chosen)
            jobs = []
            for p in range(0, len(neighbours), PAIR_CHUNK):
                path = parts / f"pairs-{p // PAIR_CHUNK:04d}.pt"
                if not path.exists():
                    work = [(records[t], [records[n] for n in near]) for t, near in neighbours[p : p + PAIR_CHUNK]]
                    jobs.append((work, str(path)))
            log(f"mijr: aligning {sum(len(w) for w, _ in jobs)} of {len(neighbours)} filter images with "
                f"{cfg.neighbours} neighbours each")
            run_map(_pairs_part, jobs)
        examples = [e for path in sorted(parts.glob("pairs-*.pt")) for e in torch.load(path, weights_only=True)]
        refiner.fit_filter(records, descriptors, projection, examples, seconds=time.time() - start)
        refiner.pool.card.update({
            "method": "MIJR (Ma et al., IEEE TMM), salplug-mijr reimplementation",
            "data": {"root": cfg.data, "maps": cfg.maps, "pool": len(stems), "first": stems[:3],
                     "filter_images": len(neighbours), "projection_images": sum(len(c) for c in chunks[:sample])},
            "split_rule": "salplug.data._datasets.subset: pool_size stems evenly spaced over the sorted stems"
                          + ("" if cfg.pool_fold is None else f" of fold {cfg.pool_fold} of {cfg.pool_folds} (salplug.data._datasets.held_fold)")
                          + "; filter images evenly spaced over the pool",
            "labels": "masks: the filter's Table I labels and true labels for pool_labels=masks; "
                      "retrieved instances default to the pseudo GT of the base maps",
            "command": self.command(),
        })
        refiner.save_index(cfg.out)
        log(f"mijr: done in {time.time() - start:.0f}s, wrote {cfg.out}")
        return Path(cfg.out)

    @staticmethod
    def _gather(parts: Path, chunks: list[list[str]]) -> tuple[list[Record], Tensor]:
        """Every part's records and descriptors, in pool order (sorted stems)."""
        records, descriptors = [], []
        for i in range(len(chunks)):
            got, desc = _read_part(parts / f"records-{i:04d}.pt")
            records += got
            descriptors.append(desc)
        order = sorted(range(len(records)), key=lambda i: records[i].key)
        return [records[i] for i in order], torch.cat(descriptors)[order]


@contextmanager
def _mapper(workers: int, setup: tuple, local: MIJR) -> Iterator[Callable[[Callable, list], list]]:
    """`map(fn, jobs)` over `workers` spawned processes (0: here, with the `local` refiner), in order,
    logging progress every 10 jobs."""
    def logged(results: Iterator, jobs: list) -> list:
        out, start = [], time.time()
        for done, result in enumerate(results, 1):
            out.append(result)
            if done % 10 == 0 or done == len(jobs):
                log(f"mijr: {done}/{len(jobs)} parts ({time.time() - start:.0f}s)")
        return out

    if workers == 0:
        _start_worker(*setup, refiner=local)
        yield lambda fn, jobs: logged(map(fn, jobs), jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_start_worker, initargs=setup) as pool:
        yield lambda fn, jobs: logged(pool.imap(fn, jobs, chunksize=1), jobs)
