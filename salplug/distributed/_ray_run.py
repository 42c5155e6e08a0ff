"""`salplug run --engine ray`: the local runner's job and guarantees on a Ray cluster.

The driver decides what to do exactly as the local runner does (`salplug.pipeline._runner.plan_run`:
manifest, inputs, finished maps skipped). Ray Data then reads and decodes the photos in
CPU tasks and hands batches to a pool of actors; each actor builds the chain once (on its
GPU when it has one) and writes maps atomically with the local runner's writer, so the
bytes are the same. Ray restarts an actor that dies and retries its batch; a map already
written in this run is not written again, and the driver counts every image once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from salplug.pipeline._batching import size_batches
from salplug.pipeline._chain import Chain
from salplug.errors import ImageReadError
from salplug.data._io import encode_png, read_image, to_uint8, write_map
from salplug.pipeline._manifest import MANIFEST, judge_manifest, manifest
from salplug.data._inputs import InputItem, collect_inputs
from salplug.pipeline._runner import RunPlan, RunReport, _Writer, plan_run
from salplug.pipeline._spec import ChainSpec
from salplug.distributed._ray_setup import connect, quiet_data_context, require_ray
from salplug.distributed._uri_folder import UriFolder, is_uri

def read_row(row: dict[str, Any]) -> dict[str, Any]:
    """Decode one photo in a Ray CPU task; a photo that cannot be read carries its reason instead."""
    try:
        image, error = read_image(row["path"]), ""
    except ImageReadError as err:
        image, error = np.zeros((0, 0, 3), np.float32), err.reason
    return {**row, "image": image, "error": error}


class ChainWorker:
    """A Ray actor: the chain built once, then batches refined and their maps written."""

    def __init__(self, spec: dict[str, Any], device: str, out_dir: str, save_steps: bool, started: float):
        self.chain = Chain.from_spec(spec).to(device)
        self.out_dir, self.save_steps, self.started = out_dir, save_steps, started
        self.step_names = list(self.chain.steps) if save_steps else []
        self.folder = UriFolder(out_dir) if is_uri(out_dir) else None

    def _store(self, relative: str, saliency) -> Path | str:
        if self.folder is None:
            return write_map(Path(self.out_dir) / relative, saliency)
        return self.folder.write_bytes(relative, encode_png(to_uint8(saliency), relative))

    def _mtime(self, relative: str) -> float | None:
        if self.folder is not None:
            return self.folder.mtime(relative)
        try:
            return (Path(self.out_dir) / relative).stat().st_mtime
        except OSError:
            return None

    def written_this_run(self, key: str) -> bool:
        """True when an earlier attempt at this batch (a worker that died) already wrote this map."""
        maps = [f"{key}.png", *(f"steps/{n}/{key}.png" for n in self.step_names)]
        times = [self._mtime(relative) for relative in maps]
        return all(t is not None and t >= self.started for t in times)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        """Refine and write a batch; one row back per photo, its reason empty when its map was written."""
        report = RunReport()
        entries = []
        for path, key, image, error in zip(batch["path"], batch["key"], batch["image"], batch["error"]):
            item = InputItem(Path(str(path)), str(key))
            if error:
                report.failed[str(item.path)] = str(error)
            elif not self.written_this_run(item.key):
                entries.append((item, np.asarray(image, dtype=np.float32)))
        with tqdm(disable=True) as bar:
            writer = _Writer(self.chain, Path(self.out_dir), self.save_steps, report, bar, self._store)
            for group in size_batches(entries, lambda entry: entry[1].shape, max(len(entries), 1)):
                writer.run(group)
        paths = [str(Path(str(path))) for path in batch["path"]]
        return {"path": paths, "key": [str(k) for k in batch["key"]], "reason": [report.failed.get(p, "") for p in paths]}


def plan_uri_run(chain: Chain, inputs: Sequence[str | Path], folder: UriFolder, *, overwrite: bool,
                 save_steps: bool) -> RunPlan:
    """`salplug.pipeline._runner.plan_run` for an output folder on a pyarrow filesystem: manifest, inputs, finished maps."""
    now = manifest(chain, save_steps=save_steps)
    if not overwrite:
        old = folder.read_text(MANIFEST)
        judge_manifest(now, old, folder.count(".png") if old is None else 0, where=folder.uri,
                       path=f"{folder.uri}/{MANIFEST}")
    items, failed = collect_inputs(inputs)
    report = RunReport(failed=failed)
    step_names = list(chain.steps) if save_steps else []
    todo = []
    for item in items:
        maps = [f"{item.key}.png", *(f"steps/{name}/{item.key}.png" for name in step_names)]
        if not overwrite and all(folder.exists(relative) for relative in maps):
            report.skipped.append(f"{folder.uri}/{item.key}.png")
        else:
            todo.append(item)
    folder.write_bytes(MANIFEST, (json.dumps(now, indent=2) + "\n").encode("utf-8"))
    return RunPlan(todo, report, step_names)


def run_chain_on_files_ray(
    chain: Chain | ChainSpec | Mapping[str, Any] | str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    address: str | None = None,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    batch_size: int = 8,
    overwrite: bool = False,
    save_steps: bool = False,
    progress: bool = True,
) -> RunReport:
    """`salplug.pipeline._runner.run_chain_on_files` on Ray: same maps, same report, same manifest.

    `chain` is a `Chain` or a spec (only its spec travels: each actor builds its own copy,
    on ``cuda`` when `gpus_per_worker` > 0). `address` is Ray's (``auto``, ``HOST:PORT``);
    None joins the cluster this process already started, or starts a local one. `out_dir`
    is a path every worker can write to (a local disk on one machine, shared storage on a
    cluster) or a pyarrow filesystem URI (``s3://bucket/maps``, ``file:///data/maps``).
    """
    ray = require_ray()
    chain = chain if isinstance(chain, Chain) else Chain.from_spec(chain)
    if is_uri(out_dir):
        out = str(out_dir).rstrip("/")
        plan = plan_uri_run(chain, inputs, UriFolder(out), overwrite=overwrite, save_steps=save_steps)
    else:
        out = str(Path(out_dir).resolve())
        plan = plan_run(chain, inputs, Path(out_dir), overwrite=overwrite, save_steps=save_steps, manifest=True)
    report = plan.report
    if not plan.todo:
        return report
    connect(address)
    quiet_data_context()
    started = time.time() - 1.0  # file times may be rounded down to the second
    spec = chain.to_spec().model_dump(mode="json")
    rows = ray.data.from_items([{"path": str(item.path), "key": item.key} for item in plan.todo])
    results = rows.map(read_row).map_batches(
        ChainWorker,
        fn_constructor_kwargs={
            "spec": spec, "device": "cuda" if gpus_per_worker > 0 else "cpu",
            "out_dir": out, "save_steps": save_steps, "started": started,
        },
        batch_size=batch_size,
        concurrency=workers,
        num_gpus=gpus_per_worker or None,
        batch_format="numpy",
    )
    seen: set[str] = set()
    with tqdm(total=len(plan.todo), unit="image", disable=not progress) as bar:
        try:
            for row in results.iter_rows():
                if row["path"] in seen:
                    continue
                seen.add(row["path"])
                if row["reason"]:
                    report.failed[row["path"]] = row["reason"]
                else:
                    report.written.append(f"{out}/{row['key']}.png" if is_uri(out) else Path(out_dir) / f"{row['key']}.png")
                bar.update(1)
        except KeyboardInterrupt:
            report.interrupted = True
    return report
