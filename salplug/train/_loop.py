"""The one training loop: it owns the step, the time limit, saves, resume, logs and data-parallel ranks.

A trainer supplies its model, optimiser (and schedule), a dataset of ``(epoch, index)``
items and ``loss(batch) -> Tensor``; what else it keeps (A2S's rectified labels, a
validation curve) goes through `Hooks`. The loop runs the forward pass in bf16 autocast when
asked, the backward pass (split into `accumulate` parts), the gradient sum over ranks,
clipping, the optimiser and schedule steps.

Every few minutes, at each epoch end, on SIGINT/SIGTERM and at `max_minutes` or
`max_steps`, the loop writes two files: the component's checkpoint (``out``, usable at once,
with its card) and the run state beside it (``<out stem>.state.pt``: settings, weights,
optimiser, schedule, RNG, data position, figures and the hooks' state, under a checksum).
``resume=True`` continues from the state; with `salplug.train._data`'s per-sample seeding a
run interrupted and resumed ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.distributed as dist
from pydantic import Field, field_validator
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from salplug.components._base import Component, ComponentConfig
from salplug.components._weights import read_payload, write_payload
from salplug.data._datasets import DatasetError
from salplug.data._io import temporaries_of
from salplug.errors import CheckpointError
from salplug.ops._device import require_computing
from salplug.train import _parallel as data_parallel
from salplug.train._data import EpochBatches, collate_usable
from salplug.train._parallel import shard, sum_gradients

STATE_FORMAT = "salplug-train-state/2"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # a stop request in the main process, ignored by workers


class LoopConfig(ComponentConfig):
    """Config fields of every trainer: the loop reads them, the trainer adds its own."""

    resume_free: ClassVar[frozenset[str]] = frozenset(
        {"resume", "out", "threads", "workers", "device", "max_minutes", "max_steps", "save_every_minutes"})
    """Fields a resumed run may change: none alters what is trained. Trainers may add theirs."""

    out: str = Field(description="Checkpoint to write; the run state goes beside it as <stem>.state.pt.")
    epochs: int = Field(default=10, ge=1, description="Passes over the training images.")
    batch_size: int = Field(default=16, ge=1, description="Images per optimiser step.")
    workers: int = Field(default=2, ge=0, description="DataLoader worker processes decoding and augmenting (0: in the main process).")
    seed: int = Field(default=0, description="Seed of initialisation, sample order and augmentation.")
    resume: bool = Field(default=False, description="Continue the run from the state file beside `out`, with its settings.")
    max_minutes: float | None = Field(default=None, gt=0, description="Stop cleanly (resumable) after this many minutes of this run.")
    max_steps: int | None = Field(default=None, ge=1, description="Stop cleanly (resumable) once the run has taken this many optimiser steps.")
    save_every_minutes: float = Field(default=5.0, gt=0, description="Minutes between run-state saves.")
    threads: int = Field(default=0, ge=0, description="torch threads (0: torch's default).")
    device: str = Field(default="cpu", description="Device to train on (cpu, cuda).")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="Step arithmetic: bf16 autocast (also about 2x faster on CPUs with AMX), fp32, "
        "or auto: bf16 on CUDA, fp32 on the CPU. Trainers take their loss in fp32 either way.")
    accumulate: int = Field(default=1, ge=1, description="Backward passes per optimiser step, each on a part of the "
                            "batch: the memory of a part, the step of the whole batch.")
    clip_grad_norm: float | None = Field(default=None, gt=0, description="Clip the gradients' global L2 norm to this (None: no clipping).")

    @field_validator("device")
    @classmethod
    def _computes(cls, value: str) -> str:
        """A device torch parses and that holds values, so a typo or ``meta`` fails before any data loads."""
        try:
            device = torch.device(value)
        except RuntimeError:
            raise ValueError(f"expected a torch device such as cpu or cuda:0, got {value!r}") from None
        require_computing(device, value)
        return value


@dataclass
class Progress:
    """Where a run is: the data position and the figures so far."""

    epoch: int = 0
    position: int = 0
    """Samples of `epoch` already consumed."""
    step: int = 0
    epoch_loss: float = 0.0
    """Sum of per-sample losses of the current epoch so far."""
    seconds: float = 0.0
    history: list[float] = field(default_factory=list)
    """Mean loss of each finished epoch."""
    figures: dict[str, Any] = field(default_factory=dict)
    """What `Hooks.end_epoch` reported last (a validation curve)."""
    resumed: list[int] = field(default_factory=list)
    """Steps at which the run was resumed."""


@dataclass(frozen=True)
class LoopResult:
    checkpoint: Path
    finished: bool
    reason: str
    progress: Progress


class Interrupted(KeyboardInterrupt):
    """The run stopped on SIGINT or SIGTERM after saving; `salplug train` exits 128 + the signal (130, 143)."""

    def __init__(self, result: LoopResult, signum: int):
        super().__init__(result.reason)
        self.result, self.signum = result, signum


class Hooks:
    """What a trainer keeps beside model, optimiser and schedule; override what applies.

    `state_dict` goes into the run state at every save and comes back through
    `load_state_dict` on resume (after the weights, before the first step).
    """

    def after_step(self, batch: dict[str, Any]) -> None:
        """After each optimiser step (A2S rewrites the batch's labels here)."""

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """Figures after epoch `epoch` (0-based) for the card, such as a validation curve; JSON values."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any], progress: Progress) -> None:
        """Restore what `state_dict` gave; `progress` says where the run resumes."""


def state_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}.state.pt")


def settings(config: LoopConfig) -> dict[str, Any]:
    """The fields that decide what a run trains: all but the config's `resume_free` ones."""
    return config.model_dump(mode="json", exclude=set(type(config).resume_free))


def write_state(payload: dict[str, Any], path: str | Path) -> Path:
    """A run state under a sha256 of its bytes, so a corrupted file is refused rather than resumed."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    return write_payload({"format": STATE_FORMAT, "sha256": hashlib.sha256(body).hexdigest(),
                          "body": torch.frombuffer(bytearray(body), dtype=torch.uint8)}, path)


def read_state(path: str | Path) -> dict[str, Any]:
    """The run state `write_state` wrote, after checking its checksum."""
    path = Path(path)
    outer = read_payload(path, STATE_FORMAT, what="run state", expected=f"run state {path}: expected a {STATE_FORMAT} file",
                         missing_hint=" (resume needs the state file of an earlier run with the same `out`)")
    body = outer["body"].numpy().tobytes()
    digest = hashlib.sha256(body).hexdigest()
    if digest != outer["sha256"]:
        raise CheckpointError(f"run state {path} is corrupted: expected sha256 {outer['sha256'][:16]}..., got "
                              f"{digest[:16]}... (a damaged disk or copy); start again without --resume")
    return torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)


def stored_settings(out: str | Path) -> dict[str, Any]:
    """The settings of the run whose state lies beside `out`: what `--resume` continues with."""
    return dict(read_state(state_path(out))["settings"])


def _differences(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    return [f"{k} (state {stored.get(k)!r}, now {now.get(k)!r})"
            for k in sorted(stored.keys() | now.keys()) if stored.get(k) != now.get(k)]


def _load_weights(path: Path, model: Component, weights: dict[str, torch.Tensor]) -> None:
    """The state's weights into `model`, or one line naming the first tensor that does not fit."""
    own = model.state_dict()
    problems = [f"{k}: expected {tuple(own[k].shape)}, got {tuple(v.shape)}"
                for k, v in weights.items() if k in own and own[k].shape != v.shape]
    problems += [f"{k}: missing from the state" for k in own.keys() - weights.keys()]
    problems += [f"{k}: not in this model" for k in weights.keys() - own.keys()]
    if problems:
        raise CheckpointError(f"run state {path}: made for another architecture of {model.kind} {model.name!r} "
                              f"({len(problems)} tensors differ; first {sorted(problems)[0]})")
    model.load_state_dict(weights)


def _device_of(path: Path) -> str:
    """The device (or, failing that, the mount point) holding `path`."""
    mount = path.resolve().parent
    while not os.path.ismount(mount):
        mount = mount.parent
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            source, target = line.split()[:2]
            if target == str(mount):
                return f"{source} (mounted at {mount})"
    return str(mount)


@contextlib.contextmanager
def _disk_space(path: Path) -> Iterator[None]:
    """A full disk during a save as one line that names the device; the files of the last save stay whole."""
    try:
        yield
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        raise OSError(f"no space left on {_device_of(path)} writing {path}; the files of the last save are "
                      f"intact, free space and continue with --resume") from None


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps, restoring the handlers after."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopRequest]:
        def handle(signum, _frame):
            self.signal = signum

        previous = {s: signal.signal(s, handle) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def ignore_stop_signals(_worker_id: int) -> None:
    """DataLoader workers leave stopping to the main process, which finishes its step, saves and shuts them down.

    Without this a SIGTERM sent to every process of the command (`pkill -f`) kills a worker, and
    torch aborts the run from its SIGCHLD handler before the save.
    """
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def poly_schedule(optim: torch.optim.Optimizer, total_steps: int, power: float = 0.9) -> torch.optim.lr_scheduler.LambdaLR:
    """lr × (1 − step/total)^power, stepped once per optimiser step (the LDPS and A2S papers' decay)."""
    return torch.optim.lr_scheduler.LambdaLR(optim, lambda s: max(0.0, 1 - s / max(1, total_steps)) ** power)


def _log_rows(path: Path) -> list[dict[str, Any]]:
    """The log's rows; a line cut short by a crash mid-write is left out."""
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            row = json.loads(line)
            if isinstance(row, dict) and "step" in row:
                rows.append(row)
    return rows


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines past the resumed step: they belong to work the state does not hold."""
    if path.exists():
        path.write_text("".join(json.dumps(row) + "\n" for row in _log_rows(path) if row["step"] <= step))


def plot_loss(log_path: Path, png: Path, title: str) -> Path:
    """Per-step loss (light) and its running mean over 50 steps, from the JSON-lines log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _log_rows(log_path)
    steps, losses = [r["step"] for r in rows], [r["loss"] for r in rows]
    window = [sum(losses[max(0, i - 49) : i + 1]) / len(losses[max(0, i - 49) : i + 1]) for i in range(len(losses))]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, color="0.75", linewidth=0.6, label="per step")
    ax.plot(steps, window, color="black", linewidth=1.5, label="mean of 50 steps")
    ax.set(xlabel="optimiser step", ylabel="loss", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def _batch_size(batch: dict[str, Any]) -> int:
    return next(len(v) for v in batch.values() if isinstance(v, (torch.Tensor, list)))


def _parts(batch: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """`batch` cut into at most `count` consecutive parts along its first dimension."""
    size = _batch_size(batch)
    bounds = [round(i * size / count) for i in range(count + 1)]
    return [{k: v[a:b] if isinstance(v, (torch.Tensor, list)) else v for k, v in batch.items()}
            for a, b in zip(bounds, bounds[1:]) if b > a]


def _resume(path: Path, trainer: str, model: Component, optim: torch.optim.Optimizer, sched: Any, hooks: Hooks,
            cfg: LoopConfig) -> Progress:
    """Everything the state at `path` holds, back in place; refused for another trainer or other settings."""
    payload = read_state(path)
    if (payload["trainer"], payload["kind"], payload["name"]) != (trainer, model.kind, model.name):
        raise CheckpointError(f"run state {path}: expected a run of trainer {trainer!r} ({model.kind} "
                              f"{model.name!r}), got one of {payload['trainer']!r} ({payload['kind']} {payload['name']!r})")
    changed = _differences(payload["settings"], settings(cfg))
    if changed:
        raise CheckpointError(f"run state {path}: made with other settings, which would make the model card "
                              f"untrue; differing fields: {', '.join(changed)}")
    _load_weights(path, model, payload["model"])
    optim.load_state_dict(payload["optim"])
    if sched is not None and payload["sched"] is not None:
        sched.load_state_dict(payload["sched"])
    progress = Progress(**json.loads(payload["progress"]))
    hooks.load_state_dict(payload["extra"], progress)
    torch.set_rng_state(payload["rng"])
    progress.resumed.append(progress.step)
    return progress


def _remove_temporaries(trainer: str, *paths: Path) -> None:
    """Delete the half-written files of `paths` a killed run left (atomic writes never finished), in one line."""
    left = [tmp for path in paths for tmp in temporaries_of(path)]
    for tmp in left:
        tmp.unlink(missing_ok=True)
    if left:
        print(f"{trainer}: removed {len(left)} temporary file(s) a killed run left in {paths[0].parent}: "
              f"{', '.join(tmp.name for tmp in left)}", flush=True)


def _leave_out_unusable(dataset: Dataset, trainer: str, progress: Progress, leader: bool) -> None:
    """A dataset with a ``check()`` (`TrainingSet`) drops its unusable samples before the first step; each is named."""
    unusable = dataset.check() if callable(getattr(dataset, "check", None)) else {}
    for path, why in sorted(unusable.items()):
        if leader:
            print(f"{trainer}: left out {path}: {why}", flush=True)
    if unusable:
        progress.figures["left_out"] = sorted(unusable)
    if len(dataset) == 0:
        raise DatasetError(f"{trainer}: expected training samples, got none: every image was held out "
                           f"for validation or left out above; give more images or hold fewer out")


def fit(
    *, trainer: str, model: Component, optim: torch.optim.Optimizer, dataset: Dataset,
    loss: Callable[[dict[str, Any]], torch.Tensor], config: LoopConfig, card: dict[str, Any],
    sched: torch.optim.lr_scheduler.LRScheduler | None = None, hooks: Hooks | None = None,
) -> LoopResult:
    """Train `model` on `loss(batch)` (the mean loss of the batch) over `dataset` items ``(epoch, index)``.

    `sched` (if any) steps after each optimiser step. The checkpoint's card gets the run's
    figures under "training". Under torchrun every rank calls `fit` alike and each step is
    the global batch's (`salplug.train._parallel`); rank 0 writes the files. A stop by
    signal raises `Interrupted` once the state is saved; `max_minutes` and `max_steps`
    return a result with `finished` false.
    """
    cfg, out, card, hooks = config, Path(config.out), dict(card), hooks or Hooks()
    states, log_path = state_path(out), out.with_suffix(".log.jsonl")
    group = data_parallel.current()
    parallel = group.world > 1
    out.parent.mkdir(parents=True, exist_ok=True)
    if group.leader:
        _remove_temporaries(trainer, out, states)
    cuda = torch.device(cfg.device).type == "cuda"
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.resume:
        progress = _resume(states, trainer, model, optim, sched, hooks, cfg)
        if group.leader:
            _trim_log(log_path, progress.step)
    else:
        progress = Progress()
        torch.manual_seed(cfg.seed)  # draws in the loss (label noise, pixel samples) start alike in every fresh run
        if group.leader:
            log_path.unlink(missing_ok=True)
    if parallel:
        data_parallel.same_start(model)
    params = [p for g in optim.param_groups for p in g["params"] if p.requires_grad]
    _leave_out_unusable(dataset, trainer, progress, group.leader)
    count = len(dataset)
    per_epoch = math.ceil(count / cfg.batch_size)
    started, last_save = time.time(), time.time()
    base_seconds = progress.seconds

    def write(reason: str) -> None:
        progress.seconds = round(base_seconds + time.time() - started, 1)
        if not group.leader:
            return
        model.eval()
        figures = {**card.get("training", {}), **progress.figures, "epochs_done": progress.epoch,
                   "steps": progress.step, "train_seconds": progress.seconds, "loss_history": progress.history,
                   "state": reason, "log": log_path.name}
        if progress.resumed:
            figures["resumed_at_steps"] = progress.resumed
        if parallel:
            figures["processes"] = group.world
        with _disk_space(out):
            model.save_weights(out, {**card, "training": figures})
        with _disk_space(states):
            write_state({
                "trainer": trainer, "kind": model.kind, "name": model.name, "settings": settings(cfg),
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optim": optim.state_dict(), "sched": None if sched is None else sched.state_dict(),
                "rng": torch.get_rng_state(), "progress": json.dumps(asdict(progress)), "extra": hooks.state_dict(),
            }, states)
        model.train()

    def step(batch: dict[str, Any], size: int) -> float:
        """Forward and backward over `accumulate` parts, gradients summed over ranks, clipped; one optimiser step."""
        first, stop_at = shard(size, group)
        mine = _batch_size(batch)
        optim.zero_grad(set_to_none=True)
        value = 0.0
        for part in _parts(batch, cfg.accumulate):
            with torch.autocast(torch.device(cfg.device).type, dtype=torch.bfloat16, enabled=bf16):
                part_loss = loss(part)
            share = _batch_size(part) / mine
            (part_loss.float() * share).backward()
            value += float(part_loss.detach()) * share
        if parallel:
            weight = (stop_at - first) / size
            sum_gradients(params, weight)
            (value,) = data_parallel.over_ranks([value * weight])
        if not math.isfinite(value):
            raise RuntimeError(f"{trainer}: loss is {value} at epoch {progress.epoch + 1}, step {progress.step + 1}")
        if cfg.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
        optim.step()
        if sched is not None:
            sched.step()
        hooks.after_step(batch)
        return value

    def stop_reason(stop: StopRequest) -> tuple[str, int] | None:
        """Why to stop after this step, if at all, and the signal; under torchrun every rank gets the same answer."""
        signum = stop.signal or 0
        late = group.leader and cfg.max_minutes is not None and time.time() - started > cfg.max_minutes * 60
        if parallel:
            signum, late = (int(v) for v in data_parallel.over_ranks([signum, late], dist.ReduceOp.MAX))
        if signum:
            return f"interrupted by {signal.Signals(signum).name}", signum
        if late:
            return f"time limit of {cfg.max_minutes:g} minutes", 0
        if cfg.max_steps is not None and progress.step >= cfg.max_steps and progress.step < cfg.epochs * per_epoch:
            return f"step limit of {cfg.max_steps}", 0
        return None

    def halt(stop: StopRequest) -> LoopResult | None:
        """Save and stop when `stop_reason` says so: a signal raises `Interrupted`, a limit returns the result."""
        stopping = stop_reason(stop)
        if stopping is None:
            return None
        reason, signum = stopping
        write(reason)
        if group.leader:
            bar.write(f"{trainer}: {reason}; state in {states}, continue with --resume")
        result = LoopResult(out, False, reason, progress)
        if signum:
            raise Interrupted(result, signum)
        return result

    def save_due() -> bool:
        due = time.time() - last_save > cfg.save_every_minutes * 60
        return bool(data_parallel.over_ranks([due and group.leader], dist.ReduceOp.MAX)[0]) if parallel else due

    model.train()
    bar = tqdm(total=cfg.epochs * per_epoch, initial=progress.step, desc=trainer, unit="step", dynamic_ncols=True,
               mininterval=1 if sys.stderr.isatty() else 60, file=sys.stderr, disable=not group.leader)
    log_context = log_path.open("a") if group.leader else contextlib.nullcontext()
    with StopRequest().installed() as stop, log_context as log_file, bar:
        while progress.epoch < cfg.epochs:
            batches = EpochBatches(count, cfg.seed, progress.epoch, cfg.batch_size, progress.position, group)
            # its own generator: drawing the workers' base seed from the global one would shift a resumed run's draws
            loader = DataLoader(dataset, batch_sampler=batches, num_workers=cfg.workers, pin_memory=cuda,
                                persistent_workers=False, worker_init_fn=ignore_stop_signals, collate_fn=collate_usable,
                                generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + progress.epoch))
            for batch in loader:
                for why in batch.pop("skipped", []):
                    progress.figures.setdefault("skipped", []).append(why)
                    if group.leader:
                        bar.write(f"{trainer}: skipped {why}")
                batch = {k: v.to(cfg.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                         for k, v in batch.items()}
                size = min(cfg.batch_size, count - progress.position)
                value = step(batch, size)
                progress.position += size
                progress.step += 1
                progress.epoch_loss += value * size
                if log_file is not None:
                    log_file.write(json.dumps({"step": progress.step, "epoch": progress.epoch + 1,
                                               "loss": round(value, 6), "lr": optim.param_groups[0]["lr"],
                                               "seconds": round(base_seconds + time.time() - started, 1)}) + "\n")
                    log_file.flush()
                bar.update(1)
                bar.set_postfix(epoch=progress.epoch + 1, loss=f"{value:.4f}", refresh=False)
                if progress.position < count:
                    halted = halt(stop)
                    if halted is not None:
                        return halted
                    if save_due():
                        write("running")
                        last_save = time.time()
            progress.history.append(round(progress.epoch_loss / count, 5))
            progress.figures.update(hooks.end_epoch(progress.epoch))
            progress.epoch, progress.position, progress.epoch_loss = progress.epoch + 1, 0, 0.0
            if group.leader:
                bar.write(f"{trainer}: epoch {progress.epoch}/{cfg.epochs} loss {progress.history[-1]:.5f} "
                          f"lr {optim.param_groups[0]['lr']:g} {base_seconds + time.time() - started:.0f}s")
            if progress.epoch < cfg.epochs:
                halted = halt(stop)
                if halted is not None:
                    return halted
                write("running")
                last_save = time.time()
    if group.leader:
        card["loss_curve"] = plot_loss(log_path, out.with_suffix(".loss.png"), f"{trainer}: {out.name}").name
    write("finished")
    return LoopResult(out, True, "finished", progress)
