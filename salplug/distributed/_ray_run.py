"""`salplug run --engine ray`: the local runner's job and guarantees on a Ray cluster.

The driver plans through the local runner's own `salplug.pipeline._runner.plan_run` (folder
lock, manifest, inputs, finished maps skipped), with a `UriFolder` for ``scheme://`` outputs
in place of the local folder. Ray Data then reads and decodes the photos in
CPU tasks and hands batches to a pool of actors; each actor builds the chain once (on its
GPU when it has one) and writes maps atomically with the local runner's writer, so the
bytes are the same. Ray restarts an actor that dies and retries its batch; a map already
written in this run is not written again, and the driver counts every image once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from salplug.data._inputs import InputItem
from salplug.data._io import MAX_IMAGE_PIXELS, read_image
from salplug.errors import ImageReadError
from salplug.pipeline._batching import BATCH_PIXELS, size_batches
from salplug.pipeline._chain import Chain
from salplug.pipeline._manifest import LocalFolder
from salplug.pipeline._runner import RunPlan, RunReport, _Writer, map_paths, plan_run
from salplug.pipeline._spec import ChainSpec
from salplug.distributed._ray_setup import connect, quiet_data_context, require_ray
from salplug.distributed._uri_folder import UriFolder, is_uri

def read_row(row: dict[str, Any], max_pixels: int = MAX_IMAGE_PIXELS) -> dict[str, Any]:
    """Decode one photo in a Ray CPU task; a photo that cannot be read carries its reason instead."""
    try:
        image, error = read_image(row["path"], max_pixels), ""
    except ImageReadError as err:
        image, error = np.zeros((0, 0, 3), np.float32), err.reason
    return {**row, "image": image, "error": error}


def open_folder(out_dir: str | Path) -> LocalFolder | UriFolder:
    """The output folder: a `UriFolder` for ``scheme://`` outputs, a `LocalFolder` otherwise."""
    return UriFolder(str(out_dir)) if is_uri(out_dir) else LocalFolder(out_dir)


class ChainWorker:
    """A Ray actor: the chain built once, then batches refined and their maps written."""

    def __init__(self, spec: dict[str, Any], device: str, out_dir: str, save_steps: bool, started: float,
                 max_batch_pixels: int | None = BATCH_PIXELS):
        self.chain = Chain.from_spec(spec).to(device)
        self.save_steps, self.started, self.max_batch_pixels = save_steps, started, max_batch_pixels
        self.step_names = list(self.chain.steps) if save_steps else []
        self.folder = open_folder(out_dir)

    def written_this_run(self, key: str) -> bool:
        """True when an earlier attempt at this batch (a worker that died) already wrote this map."""
        times = [self.folder.mtime(relative) for relative in map_paths(key, self.step_names)]
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
            writer = _Writer(self.chain, self.folder, self.save_steps, report, bar)
            for group in size_batches(entries, lambda entry: entry[1].shape, max(len(entries), 1),
                                      max_pixels=self.max_batch_pixels):
                writer.run(group)
        paths = [str(Path(str(path))) for path in batch["path"]]
        return {"path": paths, "key": [str(k) for k in batch["key"]], "reason": [report.failed.get(p, "") for p in paths]}


def run_chain_on_files_ray(
    chain: Chain | ChainSpec | Mapping[str, Any] | str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    address: str | None = None,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    batch_size: int = 8,
    max_batch_pixels: int | None = BATCH_PIXELS,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    overwrite: bool = False,
    save_steps: bool = False,
    progress: bool = True,
) -> RunReport:
    """`salplug.pipeline.run_chain_on_files` on Ray: same report, same manifest, maps within one grey level.

    `chain` is a `Chain` or a spec (only its spec travels: each actor builds its own copy,
    on ``cuda`` when `gpus_per_worker` > 0). `address` is Ray's (``auto``, ``HOST:PORT``);
    None joins the cluster this process already started, or starts a local one. `out_dir`
    is a path every worker can write to (a local disk on one machine, shared storage on a
    cluster) or a pyarrow filesystem URI (``s3://bucket/maps``, ``file:///data/maps``).
    """
    ray = require_ray()
    chain = chain if isinstance(chain, Chain) else Chain.from_spec(chain)
    folder = open_folder(str(out_dir).rstrip("/") if is_uri(out_dir) else out_dir)
    with folder.lock():
        plan = plan_run(chain, inputs, folder, overwrite=overwrite, save_steps=save_steps, manifest=True)
        if plan.todo:
            _run_plan(ray, chain, plan, folder, address=address, workers=workers, gpus_per_worker=gpus_per_worker,
                      batch_size=batch_size, max_batch_pixels=max_batch_pixels, max_image_pixels=max_image_pixels,
                      save_steps=save_steps, progress=progress)
    return plan.report


def _run_plan(ray, chain: Chain, plan: RunPlan, folder: LocalFolder | UriFolder, *, address: str | None,
              workers: int, gpus_per_worker: float, batch_size: int, max_batch_pixels: int | None,
              max_image_pixels: int, save_steps: bool, progress: bool) -> None:
    """Read, refine and write `plan.todo` on the cluster, adding what happened to `plan.report`."""
    report = plan.report
    connect(address)
    quiet_data_context()
    started = time.time() - 1.0  # file times may be rounded down to the second
    out = folder.uri if is_uri(folder.uri) else str(Path(folder.uri).resolve())
    rows = ray.data.from_items([{"path": str(item.path), "key": item.key} for item in plan.todo])
    results = rows.map(read_row, fn_kwargs={"max_pixels": max_image_pixels}).map_batches(
        ChainWorker,
        fn_constructor_kwargs={
            "spec": chain.to_spec().model_dump(mode="json"), "device": "cuda" if gpus_per_worker > 0 else "cpu",
            "out_dir": out, "save_steps": save_steps, "started": started, "max_batch_pixels": max_batch_pixels,
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
                    report.written.append(folder.location(f"{row['key']}.png"))
                bar.update(1)
        except KeyboardInterrupt:
            report.interrupted = True
