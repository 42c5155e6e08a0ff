"""A resumable training loop for long runs: periodic state, clean stops, logs and a loss curve.

Every few minutes, at each epoch end, on SIGINT/SIGTERM and when `max_minutes` is reached,
the loop writes two files: the component's checkpoint (``out``, usable at once, with its
card) and the run state beside it (``<out stem>.state.pt``: full-precision weights,
optimiser, schedule, RNG, data position, figures). ``resume=True`` continues from the
state; together with `salplug.train._data`'s per-sample seeding, a run interrupted and
resumed ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from pydantic import Field
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from salplug.components._base import Component, ComponentConfig
from salplug.errors import CheckpointError
from salplug.train import _parallel as data_parallel
from salplug.train._parallel import GradientSum, shard
from salplug.train._data import EpochBatches
from salplug.components._weights import read_payload, write_payload

STATE_FORMAT = "salplug-train-state/1"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # a stop request in the main process, ignored by workers


class LoopConfig(ComponentConfig):
    """Config fields of every trainer that runs on `fit`."""

    out: str = Field(description="Checkpoint to write; the run state goes beside it as <stem>.state.pt.")
    epochs: int = Field(default=10, ge=1, description="Passes over the training images.")
    batch_size: int = Field(default=16, ge=1, description="Images per optimiser step.")
    workers: int = Field(default=2, ge=0, description="DataLoader worker processes decoding and augmenting (0: in the main process).")
    seed: int = Field(default=0, description="Seed of initialisation, sample order and augmentation.")
    resume: bool = Field(default=False, description="Continue the run from the state file beside `out`.")
    max_minutes: float | None = Field(default=None, gt=0, description="Stop cleanly (resumable) after this many minutes of this run.")
    save_every_minutes: float = Field(default=5.0, gt=0, description="Minutes between run-state saves.")
    threads: int = Field(default=0, ge=0, description="torch threads (0: torch's default).")
    device: str = Field(default="cpu", description="Device to train on (cpu, cuda).")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="Step arithmetic: bf16 autocast (also about 2x faster on CPUs with AMX), fp32, "
        "or auto: bf16 on CUDA, fp32 on the CPU. Trainers take their loss in fp32 either way.")


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


@dataclass(frozen=True)
class LoopResult:
    checkpoint: Path
    finished: bool
    reason: str
    progress: Progress


def state_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}.state.pt")


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


def save_state(path: Path, model: Component, optim: torch.optim.Optimizer, sched: Any, progress: Progress) -> None:
    payload = {
        "format": STATE_FORMAT, "kind": model.kind, "name": model.name,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optim": optim.state_dict(), "sched": None if sched is None else sched.state_dict(),
        "rng": torch.get_rng_state(), "progress": json.dumps(asdict(progress)),
    }
    write_payload(payload, path)


def load_state(path: Path, model: Component, optim: torch.optim.Optimizer, sched: Any) -> Progress:
    payload = read_payload(path, STATE_FORMAT, what="run state", expected=f"run state {path}: expected a {STATE_FORMAT} file",
                           missing_hint=" (resume needs the state file of an earlier run with the same `out`)")
    if (payload["kind"], payload["name"]) != (model.kind, model.name):
        raise CheckpointError(f"run state {path}: expected a run of {model.kind} {model.name!r}, "
                              f"got one of {payload['kind']} {payload['name']!r}")
    model.load_state_dict(payload["model"])
    optim.load_state_dict(payload["optim"])
    if sched is not None and payload["sched"] is not None:
        sched.load_state_dict(payload["sched"])
    torch.set_rng_state(payload["rng"])
    return Progress(**json.loads(payload["progress"]))


def poly_schedule(optim: torch.optim.Optimizer, total_steps: int, power: float = 0.9) -> torch.optim.lr_scheduler.LambdaLR:
    """lr × (1 − step/total)^power, stepped once per optimiser step (the LDPS and A2S papers' decay)."""
    return torch.optim.lr_scheduler.LambdaLR(optim, lambda s: max(0.0, 1 - s / max(1, total_steps)) ** power)


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines past the resumed step: they belong to work the state does not hold."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(f"{line}\n" for line in kept))


def plot_loss(log_path: Path, png: Path, title: str) -> Path:
    """Per-step loss (light) and its running mean over 50 steps, from the JSON-lines log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line]
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


def fit(
    *, trainer: str, model: Component, optim: torch.optim.Optimizer, dataset: Dataset,
    step: Callable[[dict[str, Any]], float], config: LoopConfig, card: dict[str, Any],
    sched: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> LoopResult:
    """Train `model` with `step(batch) -> loss` over `dataset` items ``(epoch, index)``.

    `step` does the forward pass, backward pass and optimiser step; `sched` (if any) is
    stepped after each optimiser step. The checkpoint's card gets the run's figures.
    Under torchrun every rank calls `fit` alike and each step is the global batch's
    (`salplug.train._parallel`); rank 0 writes the files.
    """
    cfg, out, card = config, Path(config.out), dict(card)
    states, log_path = state_path(out), out.with_suffix(".log.jsonl")
    group = data_parallel.current()
    parallel = group.world > 1
    out.parent.mkdir(parents=True, exist_ok=True)
    cuda = torch.device(cfg.device).type == "cuda"
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    progress = Progress()
    if cfg.resume:
        progress = load_state(states, model, optim, sched)
        if group.leader:
            _trim_log(log_path, progress.step)
    elif group.leader:
        log_path.unlink(missing_ok=True)
    if parallel:
        data_parallel.same_start(model)
        gradients = GradientSum(optim)
    count = len(dataset)
    per_epoch = math.ceil(count / cfg.batch_size)
    started, last_save = time.time(), time.time()
    base_seconds = progress.seconds

    def write(reason: str) -> None:
        progress.seconds = round(base_seconds + time.time() - started, 1)
        if not group.leader:
            return
        model.eval()
        figures = {"epochs_done": progress.epoch, "steps": progress.step, "train_seconds": progress.seconds,
                   "loss_history": progress.history, "state": reason, "log": log_path.name}
        if parallel:
            figures["processes"] = group.world
        model.save_weights(out, {**card, "training": figures})
        save_state(states, model, optim, sched, progress)
        model.train()

    def stop_reason(stop: StopRequest) -> str | None:
        """Why to stop after this step, if at all; under torchrun every rank gets the same answer."""
        signum = stop.signal or 0
        late = group.leader and cfg.max_minutes is not None and time.time() - started > cfg.max_minutes * 60
        if parallel:
            signum, late = (int(v) for v in data_parallel.over_ranks([signum, late], dist.ReduceOp.MAX))
        if signum:
            return f"interrupted by {signal.Signals(signum).name}"
        if late:
            return f"time limit of {cfg.max_minutes:g} minutes"
        return None

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
            loader = DataLoader(dataset, batch_sampler=batches, num_workers=cfg.workers, pin_memory=cuda,
                                persistent_workers=False, worker_init_fn=ignore_stop_signals)
            for batch in loader:
                batch = {k: v.to(cfg.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                         for k, v in batch.items()}
                size = min(cfg.batch_size, count - progress.position)
                first, stop_at = shard(size, group)
                if parallel:
                    gradients.weight = (stop_at - first) / size
                with torch.autocast(torch.device(cfg.device).type, dtype=torch.bfloat16, enabled=bf16):
                    loss = step(batch)
                if parallel:
                    (loss,) = data_parallel.over_ranks([loss * (stop_at - first) / size])
                if not math.isfinite(loss):
                    raise RuntimeError(f"{trainer}: loss is {loss} at epoch {progress.epoch + 1}, step {progress.step + 1}")
                if sched is not None:
                    sched.step()
                progress.position += size
                progress.step += 1
                progress.epoch_loss += loss * size
                if log_file is not None:
                    log_file.write(json.dumps({"step": progress.step, "epoch": progress.epoch + 1,
                                               "loss": round(loss, 6), "lr": optim.param_groups[0]["lr"],
                                               "seconds": round(base_seconds + time.time() - started, 1)}) + "\n")
                    log_file.flush()
                bar.update(1)
                bar.set_postfix(epoch=progress.epoch + 1, loss=f"{loss:.4f}", refresh=False)
                reason = stop_reason(stop)
                if reason is not None:
                    del loader
                    write(reason)
                    if group.leader:
                        bar.write(f"{trainer}: {reason}; state in {states}, continue with --resume")
                    return LoopResult(out, False, reason, progress)
                if save_due():
                    write("running")
                    last_save = time.time()
            progress.history.append(round(progress.epoch_loss / count, 5))
            progress.epoch, progress.position, progress.epoch_loss = progress.epoch + 1, 0, 0.0
            if group.leader:
                bar.write(f"{trainer}: epoch {progress.epoch}/{cfg.epochs} loss {progress.history[-1]:.5f} "
                          f"lr {optim.param_groups[0]['lr']:g} {base_seconds + time.time() - started:.0f}s")
            if progress.epoch < cfg.epochs:
                write("running")
                last_save = time.time()
    if group.leader:
        card["loss_curve"] = plot_loss(log_path, out.with_suffix(".loss.png"), f"{trainer}: {out.name}").name
    write("finished")
    if parallel:
        gradients.remove()
    return LoopResult(out, True, "finished", progress)
