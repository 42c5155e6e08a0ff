"""What the two A2S trainers share: their common config fields, the start of a run, validation.

Both run on `salplug.train.fit`, which owns the step, the time limit (`max_minutes`), the
run state and resume; the images sit in memory, so the loop's items are only an index and
whether to mirror it (`data.Views`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from salplug.components import input_field
from salplug.train import LoopConfig, log

from .common import BACKBONES
from .data import list_images, load_images, load_validation, read_list

DEFAULT_IMAGES = ["$SALPLUG_DATA/duts-tr/images"]


class TrainingConfig(LoopConfig):
    """Data, encoder and SGD fields of both stages (paper defaults); the loop's fields come with `LoopConfig`."""

    images: list[str] = input_field(default_factory=lambda: list(DEFAULT_IMAGES), description="Unlabelled image folders.")
    image_list: str | None = input_field(default=None, description="Text file of image stems to train on (None: every image of the folders).")
    validation: str | None = input_field(
        default=None, description="Dataset folder (images/, masks/) for a reported MAE curve only; never used for a choice.")
    validation_list: str | None = input_field(default=None, description="Text file of the validation stems (None: all).")
    backbone: Literal[BACKBONES] = Field(default="mobilenetv2_100", description="Encoder with offline ImageNet weights.")
    backbone_weights: str | None = Field(default="imagenet", description="Encoder weight tag (None: random, for tests).")
    size: int = Field(default=320, ge=32, description="Training size (square).")
    channels: int = Field(default=64, ge=2, description="Width of the head or decoder blocks.")
    gamma: float = Field(default=0.1, gt=0, description="lr multiplier at each milestone.")
    momentum: float = Field(default=0.9, ge=0, description="SGD momentum.")
    weight_decay: float = Field(default=5e-4, ge=0, description="SGD weight decay.")
    batch_size: int = Field(default=8, ge=1, description="Images per SGD step.")
    workers: int = Field(default=0, ge=0, description="DataLoader worker processes (0: in the main process; the images are in memory).")
    max_images: int | None = Field(default=None, ge=1, description="Use only the first N images (tests).")


def start_run(cfg: TrainingConfig, name: str) -> tuple[list[tuple[str, Path]], torch.Tensor]:
    """Set threads and the seed, read the training images at the training size; returns (items, images)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    start = time.time()
    only = None if cfg.image_list is None else set(read_list(cfg.image_list))
    items = list_images(cfg.images, only)[: cfg.max_images]
    images, items = load_images(items, cfg.size, name)
    log(f"{name}: {len(items)} images at {cfg.size}px loaded in {time.time() - start:.0f}s")
    return items, images


def milestone_schedule(optim: torch.optim.Optimizer, cfg: TrainingConfig, count: int) -> torch.optim.lr_scheduler.MultiStepLR:
    """lr × gamma from each milestone epoch on, stepped once per optimiser step like every schedule of the loop."""
    per_epoch = -(-count // cfg.batch_size)
    return torch.optim.lr_scheduler.MultiStepLR(optim, milestones=[m * per_epoch for m in cfg.milestones], gamma=cfg.gamma)


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
