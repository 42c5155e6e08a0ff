"""Directory runs of a chain: image files in, one PNG map per image out.

A run never stops for one bad file: unreadable images and images a step rejects are
reported with their reason while the rest are written. Maps are written atomically, so a
map on disk is complete and an interrupted run resumes by skipping it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from salplug.pipeline._batching import failure_reason, isolated, size_batches
from salplug.pipeline._chain import Chain
from salplug.errors import ImageReadError
from salplug.data._inputs import InputItem, collect_inputs
from salplug.data._io import image_tensor, read_image, remove_stale_temporaries, write_map
from salplug.pipeline._manifest import check_manifest, write_manifest

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
    """Runs batches through the chain and writes their maps, isolating failures per image."""

    def __init__(self, chain: Chain, out_dir: Path, save_steps: bool, report: RunReport, bar: tqdm,
                 store: Callable[[str, torch.Tensor], Path | str] | None = None):
        self.chain, self.out_dir, self.save_steps = chain, out_dir, save_steps
        self.report, self.bar = report, bar
        self.store = store or (lambda relative, saliency: write_map(out_dir / relative, saliency))

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
        if self.save_steps:
            for name, step_map in steps.items():
                self.store(f"steps/{name}/{item.key}.png", step_map)
        self.report.written.append(self.store(f"{item.key}.png", saliency))


def _finished(out_dir: Path, key: str, step_names: Sequence[str]) -> bool:
    maps = [out_dir / f"{key}.png", *(out_dir / "steps" / name / f"{key}.png" for name in step_names)]
    return all(path.is_file() for path in maps)


@dataclass
class RunPlan:
    """What a run has to do, decided before any image is read: the same for every engine."""

    todo: list[InputItem]
    report: RunReport
    step_names: list[str]


def plan_run(
    chain: Chain, inputs: Sequence[str | Path], out_dir: Path, *, overwrite: bool, save_steps: bool, manifest: bool
) -> RunPlan:
    """Check the manifest, list the inputs and set aside finished maps; writes the manifest for the run."""
    record = check_manifest(out_dir, chain, save_steps=save_steps, overwrite=overwrite) if manifest else None
    items, failed = collect_inputs(inputs, exclude=[out_dir])
    report = RunReport(failed=failed)
    remove_stale_temporaries(out_dir)
    step_names = list(chain.steps) if save_steps else []
    todo = []
    for item in items:
        target = out_dir / f"{item.key}.png"
        if target.resolve() == item.path.resolve():
            report.failed[str(item.path)] = f"its map {target} would overwrite the image itself"
        elif not overwrite and _finished(out_dir, item.key, step_names):
            report.skipped.append(target)
        else:
            todo.append(item)
    if record is not None:
        write_manifest(out_dir, record)
    return RunPlan(todo, report, step_names)


def run_chain_on_files(
    chain: Chain,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    batch_size: int = 8,
    overwrite: bool = False,
    save_steps: bool = False,
    progress: bool = True,
    manifest: bool = True,
) -> RunReport:
    """Write ``out_dir/<key>.png`` for every image in `inputs`, skipping maps already there.

    Images of one size are batched together (up to `batch_size`); a batch that raises is
    retried image by image so only the images at fault are reported. With `save_steps`,
    each step's map also goes to ``out_dir/steps/<step name>/<key>.png``, and a map only
    counts as done when its step maps exist too. `manifest=False` leaves the folder's manifest
    to a caller that writes one folder with several chains (and checks it itself).
    """
    out_dir = Path(out_dir)
    plan = plan_run(chain, inputs, out_dir, overwrite=overwrite, save_steps=save_steps, manifest=manifest)
    report = plan.report
    with tqdm(total=len(plan.todo), unit="image", disable=not progress) as bar:
        writer = _Writer(chain, out_dir, save_steps, report, bar)

        def readable():
            for item in plan.todo:
                try:
                    yield item, read_image(item.path)
                except ImageReadError as err:
                    writer.fail(item, err.reason)

        try:
            for batch in size_batches(readable(), lambda entry: entry[1].shape, batch_size):
                writer.run(batch)
        except KeyboardInterrupt:
            report.interrupted = True
    return report
