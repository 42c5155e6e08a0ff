"""What the two A2S trainers share: their common config fields, the start of a run, random flips, validation."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

import salplug
from salplug.components import input_field, read_payload, write_payload
from salplug.errors import CheckpointError
from salplug.train import log, state_path

from .common import BACKBONES
from .data import list_images, load_images, load_validation, read_list

DEFAULT_IMAGES = ["../shared/data/bsds-unlabeled/images", "../shared/data/sod-dev/images"]


class TrainingConfig(salplug.ComponentConfig):
    """Data, encoder, SGD and reproducibility fields of both stages (paper defaults)."""

    images: list[str] = input_field(default_factory=lambda: list(DEFAULT_IMAGES), description="Unlabelled image folders.")
    image_list: str | None = input_field(default=None, description="Text file of image stems to train on (None: every image of the folders).")
    validation: str | None = input_field(
        default=None, description="Dataset folder (images/, masks/) for a reported MAE curve only; never used for a choice.")
    validation_list: str | None = input_field(default=None, description="Text file of the validation stems (None: all).")
    device: str = Field(default="cpu", description="Device to train on (cpu, cuda).")
    backbone: Literal[BACKBONES] = Field(default="mobilenetv2_100", description="Encoder with offline ImageNet weights.")
    backbone_weights: str | None = Field(default="imagenet", description="Encoder weight tag (None: random, for tests).")
    size: int = Field(default=320, ge=32, description="Training size (square).")
    channels: int = Field(default=64, ge=2, description="Width of the head or decoder blocks.")
    gamma: float = Field(default=0.1, gt=0, description="lr multiplier at each milestone.")
    momentum: float = Field(default=0.9, ge=0, description="SGD momentum.")
    weight_decay: float = Field(default=5e-4, ge=0, description="SGD weight decay.")
    batch_size: int = Field(default=8, ge=1, description="Images per SGD step.")
    max_images: int | None = Field(default=None, ge=1, description="Use only the first N images (tests).")
    seed: int = Field(default=0, description="Seed of initialisation, batch order and flips.")
    threads: int = Field(default=0, ge=0, description="torch threads (0: torch's default).")
    budget_minutes: float | None = Field(
        default=None, gt=0, description="Time box of the whole run: when the configured epochs would not fit, epochs and "
        "milestones shrink in proportion (step time measured first); None: as configured.")
    resume: bool = Field(default=False, description="Continue from the run state beside `out` (<stem>.state.pt, "
                         "written at every epoch end: weights, optimiser, schedule, RNG; stage 2 also its rectified labels).")


RESUME_FREE = frozenset({"resume", "threads", "budget_minutes", "crf_workers", "device"})
"""Fields a resumed run may change: none of them alters what is trained."""


def load_run_state(cfg: TrainingConfig, out: str, fmt: str, name: str) -> dict:
    """The run state beside `out`, refused when it was made with other data or settings."""
    path = state_path(out)
    what = f"{name} run state"
    state = read_payload(path, fmt, what=what, expected=f"{what} {path}: expected a {fmt} file",
                         missing_hint=" (resume needs the state of an earlier run with the same `out`)")
    now = cfg.model_dump(exclude=RESUME_FREE)
    changed = sorted(k for k in now.keys() | state["settings"].keys() if now.get(k) != state["settings"].get(k))
    if changed:
        raise CheckpointError(f"{what} {path}: made with other settings; differing fields: "
                              + ", ".join(f"{k} (state {state['settings'].get(k)!r}, now {now.get(k)!r})" for k in changed))
    return state


def restore_run(state: dict, key: str, module: torch.nn.Module, optim: torch.optim.Optimizer,
                sched: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator, card: dict,
                name: str) -> tuple[list[float], int, float]:
    """Load a run state's weights (under `key`), optimiser, schedule and RNG; returns (loss history, epochs done, seconds)."""
    module.load_state_dict(state[key])
    optim.load_state_dict(state["optim"])
    sched.load_state_dict(state["sched"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["rng"])
    first, seconds = state["epochs_done"], state["seconds"]
    card["resumed"] = state["resumed"] + [first]
    log(f"{name}: resumed after epoch {first} of {state['epochs']} ({seconds:.0f}s of training so far)")
    return list(state["history"]), first, seconds


def write_run_state(cfg: TrainingConfig, out: str, fmt: str, key: str, module: torch.nn.Module,
                    optim: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
                    generator: torch.Generator, card: dict, *, epochs_done: int, epochs: int, milestones: list[int],
                    seconds: float, history: list[float], figures: dict, **extra) -> None:
    """Write what `restore_run` reads (plus a stage's `extra` entries) beside `out`, after an epoch."""
    write_payload({
        "format": fmt, "settings": cfg.model_dump(exclude=RESUME_FREE), "epochs_done": epochs_done,
        "epochs": epochs, "milestones": milestones, "seconds": seconds, "history": history, "figures": figures,
        "resumed": card.get("resumed", []), key: {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "optim": optim.state_dict(), "sched": sched.state_dict(), "generator": generator.get_state(),
        "rng": torch.get_rng_state(), **extra,
    }, state_path(out))


def start_run(cfg: TrainingConfig, name: str) -> tuple[list[tuple[str, Path]], torch.Tensor, torch.Generator]:
    """Set threads and seeds, read the training images at the training size; returns (items, images, generator)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    start = time.time()
    only = None if cfg.image_list is None else set(read_list(cfg.image_list))
    items = list_images(cfg.images, only)[: cfg.max_images]
    images = load_images(items, cfg.size)
    log(f"{name}: {len(items)} images at {cfg.size}px loaded in {time.time() - start:.0f}s")
    return items, images, generator


def fit_schedule(
    step: Callable[[], object], steps_per_epoch: int, cfg: TrainingConfig, seconds: float, name: str
) -> tuple[int, list[int], dict]:
    """Epochs and milestones that fit `seconds`: the configured ones, or both scaled down in proportion.

    `step` is one training step on a throwaway copy (so the run itself starts untouched); 20 are
    timed after 5 warm-up ones, and an epoch is its steps plus a tenth for validation and bookkeeping.
    """
    cuda = torch.device(cfg.device).type == "cuda"
    for i in range(25):
        if i == 5:
            if cuda:
                torch.cuda.synchronize()
            t = time.time()
        step()
    if cuda:
        torch.cuda.synchronize()
    per_step = (time.time() - t) / 20
    epochs = min(cfg.epochs, max(1, int(seconds // (steps_per_epoch * per_step * 1.1))))
    milestones = [max(1, round(m * epochs / cfg.epochs)) for m in cfg.milestones]
    log(f"{name}: {per_step * 1000:.1f} ms per step; {epochs} epochs (lr × {cfg.gamma} at {milestones}) fit "
        f"{seconds:.0f}s (configured {cfg.epochs} at {cfg.milestones})")
    return epochs, milestones, {"epochs": epochs, "milestones": milestones, "configured": [cfg.epochs, cfg.milestones],
                                "seconds_per_step": round(per_step, 4), "seconds_available": round(seconds)}


def random_flips(count: int, enabled: bool, generator: torch.Generator) -> torch.Tensor:
    """Which of `count` samples to mirror (each with probability 1/2); none when flipping is off."""
    if not enabled:
        return torch.zeros(count, dtype=torch.bool)
    return torch.rand(count, generator=generator) < 0.5


class Validation:
    """Held-out images with masks: the MAE of a model's maps on them, logged beside the loss each epoch.

    The masks never steer training (no early stopping, no selection): the figure is reported only.
    """

    def __init__(self, cfg: TrainingConfig):
        self.images = self.masks = None
        if cfg.validation is not None:
            folder = Path(cfg.validation)
            stems = read_list(cfg.validation_list) if cfg.validation_list else sorted(p.stem for p in (folder / "masks").iterdir())
            self.images, self.masks = load_validation(folder, stems, cfg.size)
        self.device = cfg.device
        self.history: list[float] = []

    @torch.no_grad()
    def __call__(self, predict: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, list[float]]:
        """Append the mean absolute error of `predict(images)` (B×1×S×S in [0, 1]) and return the curve."""
        if self.images is None:
            return {}
        total = 0.0
        for s in range(0, len(self.images), 16):
            x = self.images[s : s + 16].to(self.device).float() / 255
            m = self.masks[s : s + 16].to(self.device).float()
            total += float((predict(x).float() - m).abs().mean(dim=(1, 2, 3)).sum())
        self.history.append(round(total / len(self.images), 5))
        log(f"validation MAE {self.history[-1]:.4f} on {len(self.images)} held-out masks")
        return {"validation_mae": self.history, "validation_images": len(self.images)}
