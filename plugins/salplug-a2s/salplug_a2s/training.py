"""What the two A2S trainers share: their common config fields, the start of a run, random flips."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

import salplug
from salplug.components import input_field
from salplug.training import log

from .common import BACKBONES
from .data import list_images, load_images

DEFAULT_IMAGES = ["../shared/data/bsds-unlabeled/images", "../shared/data/sod-dev/images"]


class TrainingConfig(salplug.ComponentConfig):
    """Data, encoder, SGD and reproducibility fields of both stages (paper defaults)."""

    images: list[str] = input_field(default_factory=lambda: list(DEFAULT_IMAGES), description="Unlabelled image folders.")
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


def start_run(cfg: TrainingConfig, name: str) -> tuple[list[tuple[str, Path]], torch.Tensor, torch.Generator]:
    """Set threads and seeds, read the training images at the training size; returns (items, images, generator)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    start = time.time()
    items = list_images(cfg.images)[: cfg.max_images]
    images = load_images(items, cfg.size)
    log(f"{name}: {len(items)} images at {cfg.size}px loaded in {time.time() - start:.0f}s")
    return items, images, generator


def random_flips(count: int, enabled: bool, generator: torch.Generator) -> torch.Tensor:
    """Which of `count` samples to mirror (each with probability 1/2); none when flipping is off."""
    if not enabled:
        return torch.zeros(count, dtype=torch.bool)
    return torch.rand(count, generator=generator) < 0.5
