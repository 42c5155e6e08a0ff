"""`salplug eval --engine ray`: scoring spread over Ray workers, merged into the single-process scores.

Each worker scores its batches into its own `Scorer` and sends back the metric states
(float64 sums and counts); the driver merges them with `Metric.merge`. Sums only change
order, so the scores and curves equal `salplug.metrics._evaluation`'s to rounding (1e-9 and far
below). Photos, priors and masks are read in Ray CPU tasks; a chain is built once per actor.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from salplug.pipeline._batching import failure_reason, isolated, size_batches
from salplug.pipeline._chain import Chain
from salplug.data._datasets import SODDataset, index_folder
from salplug.errors import ImageReadError
from salplug.metrics._evaluation import (
    ChainPass,
    MethodScores,
    Scorer,
    load_entry,
    load_map_pair,
    refine_and_score,
    require_pairs,
    stack_uint8,
)
from salplug.distributed._ray_setup import connect, quiet_data_context, require_ray


def _scorer_rows(scorers: Sequence[Scorer]) -> dict[str, list[bytes]]:
    """One output row holding the batch's scorers, pickled (metric states are small: sums and counts)."""
    return {"scorers": [pickle.dumps(list(scorers))]}


def _merged(rows, names: Sequence[str], metrics: Sequence[str] | None, failed: dict[str, str]) -> list[Scorer]:
    total = [Scorer(name, metrics) for name in names]
    for row in rows:
        for mine, theirs in zip(total, pickle.loads(row["scorers"]), strict=True):
            mine.merge(theirs)
    for scorer in total:
        scorer.result.failed = {**failed, **scorer.result.failed}
    return total


def _key_rows(keys: Sequence[str]):
    return require_ray().data.from_items([{"key": key} for key in keys])


class _FolderScorer:
    """A Ray task body: read (map, mask) pairs of a batch of keys and score them."""

    def __init__(self, dataset: SODDataset, folder: Path, maps: dict[str, Path], name: str,
                 metrics: Sequence[str] | None):
        self.dataset, self.folder, self.maps, self.name, self.metrics = dataset, folder, maps, name, metrics
        self.warned: set[Path] = set()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        scorer = Scorer(self.name, self.metrics)
        pairs = []
        for key in batch["key"]:
            try:
                pair = load_map_pair(self.dataset, str(key), self.maps, self.folder, self.warned)
                pairs.append((str(key), *pair))
            except ImageReadError as err:
                scorer.result.failed[err.path] = err.reason
        for group in size_batches(pairs, lambda pair: pair[2].shape, max(len(pairs), 1)):
            scorer.add(stack_uint8([p for _, p, _ in group]), stack_uint8([m for _, _, m in group]),
                       [k for k, _, _ in group])
        return _scorer_rows([scorer])


def score_folder_ray(
    dataset: SODDataset,
    folder: str | Path,
    name: str,
    *,
    maps: dict[str, Path] | None = None,
    metrics: Sequence[str] | None = None,
    batch_size: int = 16,
    address: str | None = None,
    workers: int = 1,
) -> MethodScores:
    """`salplug.metrics._evaluation.score_folder` on Ray: the same scores, curves and failures."""
    require_pairs(dataset)
    folder = Path(folder)
    maps, clashes = index_folder(folder) if maps is None else (maps, {})
    connect(address)
    quiet_data_context()
    rows = _key_rows(dataset.keys).map_batches(
        _FolderScorer, fn_constructor_kwargs={"dataset": dataset, "folder": folder, "maps": maps, "name": name,
                                              "metrics": metrics},
        batch_size=batch_size, concurrency=workers, batch_format="numpy",
    )
    (scorer,) = _merged(rows.iter_rows(), [name], metrics, clashes)
    return scorer.finish(maps)


class _ChainScorer:
    """A Ray actor: the chain built once; batches of loaded entries refined and scored."""

    def __init__(self, spec: dict, device: str, names: tuple[str, str], metrics: Sequence[str] | None,
                 input_name: str, given: bool, save_folder: str | None):
        self.chain = Chain.from_spec(spec).to(device)
        self.names, self.metrics, self.input_name, self.given = names, metrics, input_name, given
        self.save_folder = Path(save_folder) if save_folder else None

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        before, after = Scorer(self.names[0], self.metrics), Scorer(self.names[1], self.metrics)
        failed: dict[str, str] = {}
        entries, paths = [], {}
        for key, image, prior, mask, path, error in zip(
            batch["key"], batch["image"], batch["prior"], batch["mask"], batch["path"], batch["error"]
        ):
            if error:
                failed[str(path)] = str(error)
            else:
                entries.append((str(key), image, prior if self.given else None, mask))
                paths[str(key)] = str(path)

        def refine(group: list[tuple]) -> None:
            refine_and_score(self.chain, group, input_name=self.input_name, given=self.given, after=after,
                             before=before, save_folder=self.save_folder)

        def failure(entry: tuple, err: Exception) -> None:
            failed[paths[entry[0]]] = failure_reason(err)

        for group in size_batches(entries, lambda entry: entry[1].shape, max(len(entries), 1)):
            isolated(group, refine, failure)
        for scorer in (before, after):
            scorer.result.failed.update(failed)
        return _scorer_rows([before, after])


def _load_row(dataset: SODDataset, prior_maps: dict[str, Path] | None, prior_folder: Path | None):
    import numpy as np

    warned: set[Path] = set()

    def load(row: dict[str, Any]) -> dict[str, Any]:
        key = row["key"]
        try:
            _, image, prior, mask = load_entry(dataset, key, prior_maps, prior_folder, warned)
            path, error = str(dataset.images[key]), ""
        except ImageReadError as err:
            image, prior, mask = np.zeros((0, 0, 3), np.float32), None, np.zeros((0, 0), np.uint8)
            path, error = err.path, err.reason
        if prior is None:
            prior = np.zeros(mask.shape, np.uint8)
        return {"key": key, "image": image, "prior": prior, "mask": mask, "path": path, "error": error}

    return load


def score_chain_ray(
    dataset: SODDataset,
    chain: Chain,
    name: str,
    *,
    priors: Sequence[str] = (),
    score_input: bool = False,
    metrics: Sequence[str] | None = None,
    batch_size: int = 8,
    save_maps: str | Path | None = None,
    address: str | None = None,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
) -> list[MethodScores]:
    """`salplug.metrics._evaluation.score_chain` on Ray: the same rows, scores and curves."""
    require_pairs(dataset)
    connect(address)
    quiet_data_context()
    spec = chain.to_spec().model_dump(mode="json")
    results = []
    for prior_name in priors or [None]:
        run = ChainPass.of(dataset, chain, name, prior_name, save_maps)
        rows = _key_rows(dataset.keys).map(_load_row(dataset, run.prior_maps, run.prior_folder)).map_batches(
            _ChainScorer,
            fn_constructor_kwargs={
                "spec": spec, "device": "cuda" if gpus_per_worker > 0 else "cpu",
                "names": (run.input_name, run.output_name), "metrics": metrics, "input_name": run.input_name,
                "given": run.prior_folder is not None,
                "save_folder": str(run.save_folder.resolve()) if run.save_folder is not None else None,
            },
            batch_size=batch_size, concurrency=workers, num_gpus=gpus_per_worker or None, batch_format="numpy",
        )
        before, after = _merged(rows.iter_rows(), [run.input_name, run.output_name], metrics, {})
        inputs, saved = run.map_files(dataset.keys)
        saved = {key: path.resolve() for key, path in saved.items()}
        results += [s.finish(saved if s is after else inputs) for s in ([before] if score_input else []) + [after]]
    return results
