"""Directory runs of a chain: image files in, one PNG map per image out.

A run never stops for one bad file: unreadable images and images a step rejects are
reported with their reason while the rest are written. Maps are written atomically, so an
interrupted run resumes by skipping the maps it finished; a map cut short afterwards (a copy
stopped, a full disk) lacks the end every PNG has and is written again. One run at a time
writes a folder: it holds the folder's lock from the manifest check to its last map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from salplug.data._inputs import InputItem, collect_inputs
from salplug.data._io import MAX_IMAGE_PIXELS, image_tensor, read_image
from salplug.errors import ImageReadError
from salplug.pipeline._batching import BATCH_PIXELS, failure_reason, isolated, size_batches
from salplug.pipeline._chain import Chain
from salplug.pipeline._manifest import MANIFEST, LocalFolder, check_manifest, write_manifest


@dataclass
class RunReport:
    """What a directory run did: maps written, maps already present, inputs that failed."""

    written: list[Path | str] = field(default_factory=list)
    """Maps written: paths, or URIs for a run into a pyarrow filesystem."""
    skipped: list[Path | str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    """The run was stopped by Ctrl-C: what it wrote is complete, the rest is for a re-run."""

    def summary(self) -> str:
        text = (
            f"{len(self.written)} written, {len(self.skipped)} skipped (already present), "
            f"{len(self.failed)} failed"
        )
        return f"interrupted: {text}; run again to continue" if self.interrupted else text


class _Writer:
    """Runs batches through the chain and writes their maps into `folder`, isolating failures per image.

    `folder` is a `LocalFolder` or, on the Ray engine, a folder on a pyarrow filesystem: both
    engines write the same bytes through it.
    """

    def __init__(self, chain: Chain, folder: LocalFolder, save_steps: bool, report: RunReport, bar: tqdm):
        self.chain, self.folder, self.save_steps = chain, folder, save_steps
        self.report, self.bar = report, bar

    def fail(self, item: InputItem, reason: str) -> None:
        self.report.failed[str(item.path)] = reason
        self.bar.update(1)

    def run(self, batch: list[tuple[InputItem, np.ndarray]]) -> None:
        isolated(batch, self._refine_and_write, lambda entry, err: self.fail(entry[0], failure_reason(err)))

    def _refine_and_write(self, batch: list[tuple[InputItem, np.ndarray]]) -> None:
        items = [item for item, _ in batch]
        images = image_tensor([array for _, array in batch]).to(self.chain.device)
        with torch.inference_mode():
            out = self.chain(images, keys=[item.key for item in items], return_steps=self.save_steps)
        saliency, steps = (out.saliency, out.steps) if self.save_steps else (out, {})
        for i, item in enumerate(items):
            try:
                self._write(item, saliency[i], {name: maps[i] for name, maps in steps.items()})
            except (OSError, ValueError) as err:
                self.fail(item, f"cannot write its map: {err}")
            else:
                self.bar.update(1)

    def _write(self, item: InputItem, saliency: torch.Tensor, steps: dict[str, torch.Tensor]) -> None:
        for name, step_map in steps.items():
            self.folder.write_map(step_path(name, item.key), step_map)
        self.report.written.append(self.folder.write_map(f"{item.key}.png", saliency))


def step_path(step: str, key: str) -> str:
    """Where `--save-steps` puts a step's map, relative to the output folder."""
    return f"steps/{step}/{key}.png"


def map_paths(key: str, step_names: Sequence[str]) -> list[str]:
    """The files that make one finished image: its map and, with `--save-steps`, each step's map."""
    return [f"{key}.png", *(step_path(name, key) for name in step_names)]


@dataclass
class RunPlan:
    """What a run has to do, decided before any image is read: the same for every engine."""

    todo: list[InputItem]
    report: RunReport
    step_names: list[str]


def plan_run(
    chain: Chain, inputs: Sequence[str | Path], folder: LocalFolder, *, overwrite: bool, save_steps: bool,
    manifest: bool
) -> RunPlan:
    """Check the manifest, list the inputs and set aside finished maps; writes the manifest for the run.

    Every engine plans through here, with `folder` a `LocalFolder` or a folder on a pyarrow
    filesystem; the caller holds ``folder.lock()`` for the whole run.
    """
    record = check_manifest(folder, chain, save_steps=save_steps, overwrite=overwrite) if manifest else None
    local = folder.local_root
    earlier = local if local is not None and folder.mtime(MANIFEST) is not None else None
    items, failed = collect_inputs(inputs, exclude=[local] if local is not None else [], maps_in=earlier)
    report = RunReport(failed=failed)
    folder.tidy()
    step_names = list(chain.steps) if save_steps else []
    step_maps = {step_path(name, item.key): (name, item.key) for item in items for name in step_names}
    todo = []
    for item in items:
        target = folder.location(f"{item.key}.png")
        clash = step_maps.get(f"{item.key}.png")
        if local is not None and (local / f"{item.key}.png").resolve() == item.path.resolve():
            report.failed[str(item.path)] = f"its map {target} would overwrite the image itself"
        elif clash:
            report.failed[str(item.path)] = (f"its map {target} is the path of the step {clash[0]!r} map of "
                                             f"{clash[1]} (--save-steps writes steps/<step>/<key>.png); rename "
                                             "its folder, or run without --save-steps")
        elif not overwrite and all(folder.complete(relative) for relative in map_paths(item.key, step_names)):
            report.skipped.append(target)
        else:
            todo.append(item)
    if record is not None:
        write_manifest(folder, record)
    return RunPlan(todo, report, step_names)


def run_chain_on_files(
    chain: Chain,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    batch_size: int = 8,
    max_batch_pixels: int | None = BATCH_PIXELS,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    overwrite: bool = False,
    save_steps: bool = False,
    progress: bool = True,
    manifest: bool = True,
) -> RunReport:
    """Write ``out_dir/<key>.png`` for every image in `inputs`, skipping maps already there.

    Images of one size are batched together (up to `batch_size`, and up to `max_batch_pixels`
    pixels; None: no pixel budget); a batch that raises is retried image by image so only the
    images at fault are reported. Photos above `max_image_pixels` are reported, not decoded.
    A map equals the one its photo gets alone within one grey level, not always to the byte:
    batched convolutions (oneDNN, cuDNN) pick their kernels by batch size.
    With `save_steps`, each step's map also goes to ``out_dir/steps/<step name>/<key>.png``, and
    a map only counts as done when its step maps exist too. `manifest=False` leaves the folder's
    manifest to a caller that writes one folder with several chains (and checks it itself).
    The folder is locked for the run: a second run into it meanwhile raises `OutputFolderError`.
    """
    folder = LocalFolder(out_dir)
    with folder.lock():
        plan = plan_run(chain, inputs, folder, overwrite=overwrite, save_steps=save_steps, manifest=manifest)
        report = plan.report
        with tqdm(total=len(plan.todo), unit="image", disable=not progress) as bar:
            writer = _Writer(chain, folder, save_steps, report, bar)

            def readable():
                for item in plan.todo:
                    try:
                        yield item, read_image(item.path, max_image_pixels)
                    except ImageReadError as err:
                        writer.fail(item, err.reason)

            try:
                for batch in size_batches(readable(), lambda entry: entry[1].shape, batch_size,
                                          max_pixels=max_batch_pixels):
                    writer.run(batch)
            except KeyboardInterrupt:
                report.interrupted = True
    return report
