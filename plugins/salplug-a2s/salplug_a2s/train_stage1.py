"""`salplug train a2s-stage1`: train the stage-1 head on unlabelled images with the activation loss.

The encoder is frozen, so each view's features (original and horizontally flipped, under
their own keys) are computed once through `salplug.FeatureCache` and only the head trains.
No label of any kind is read. Every epoch end writes the run state (head, optimiser, schedule,
RNG) beside `out`; `resume` continues from it, so the paper's schedule can span CPU sessions.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch
from pydantic import Field

import salplug
from salplug.train import FeatureCache, end_epoch, log

from .common import up
from .losses import activation_loss
from .stage1 import A2SStage1
from .training import (TrainingConfig, Validation, fit_schedule, load_run_state, random_flips, restore_run, start_run,
                       write_run_state)

STATE_FORMAT = "salplug-a2s-stage1-train-state/1"


def train_step(
    prior: A2SStage1, optim: torch.optim.Optimizer, levels: list[torch.Tensor], cfg: A2SStage1Trainer.Config,
    generator: torch.Generator,
) -> float:
    """One SGD step of the head on a batch of cached encoder levels; returns the loss."""
    fused, per_level = prior.decision(levels, cfg.size, cfg.size)
    loss = activation_loss([fused, *per_level], cfg.level_weights, l1=cfg.l1, fraction=cfg.sample_fraction,
                           generator=generator)
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()
    return float(loss.detach())


class A2SStage1Trainer(salplug.Trainer):
    """Stage 1 of A2S: SGD on the head only, lr 1, 20 epochs (paper defaults)."""

    name = "a2s-stage1"
    example_config = {"epochs": 1, "batch_size": 2, "size": 64, "channels": 8, "backbone_weights": None, "max_images": 4}

    class Config(TrainingConfig):
        out: str = Field(default="runs/a2s/a2s-stage1.pt", description="Checkpoint to write (rewritten every epoch).")
        cache_dir: str | None = Field(default="runs/a2s/feature-cache", description="Feature cache folder (None: memory only).")
        fuse_stride: int = Field(default=2, ge=1, description="Stride at which the encoder levels are fused (paper: 2).")
        epochs: int = Field(default=20, ge=1, description="Passes over the images.")
        milestones: list[int] = Field(default_factory=lambda: [12, 16], description="Epochs where lr is multiplied by gamma.")
        lr: float = Field(default=1.0, gt=0, description="SGD learning rate of the head (paper: 1).")
        flip: bool = Field(default=True, description="Random horizontal flips (flipped views cached under their own keys).")
        level_weights: list[float] = Field(default_factory=lambda: [1.0, 0.1, 0.3, 0.5], description="Fused, then levels.")
        l1: float = Field(default=0.1, ge=0, description="Weight of |p − 0.5| next to (p − 0.5)².")
        sample_fraction: float = Field(default=0.5, gt=0, le=1, description="Random share of pixels in the loss.")

    def run(self) -> Path:
        cfg = self.config
        start = time.time()
        state = load_run_state(cfg, cfg.out, STATE_FORMAT, self.name) if cfg.resume else None
        items, images, generator = start_run(cfg, self.name)

        prior = A2SStage1(
            checkpoint=None, backbone=cfg.backbone, backbone_weights=cfg.backbone_weights,
            size=cfg.size, channels=cfg.channels, fuse_stride=cfg.fuse_stride, seed=cfg.seed,
        ).to(cfg.device)
        validation = Validation(cfg)
        cache = FeatureCache(prior.backbone, cfg.cache_dir)
        views = [False, True] if cfg.flip else [False]
        feats: dict[bool, list[torch.Tensor]] = {}
        t0 = time.time()
        for flipped in views:
            chunks = []
            for s in range(0, len(items), 16):
                batch = images[s : s + 16].to(cfg.device).float() / 255
                batch = batch.flip(-1) if flipped else batch
                keys = [k + (":flip" if flipped else "") for k, _ in items[s : s + 16]]
                chunks.append(cache(batch, keys))
            feats[flipped] = [torch.cat(level) for level in zip(*chunks)]
        log(f"a2s-stage1: features of {len(items) * len(views)} views ready in {time.time() - t0:.0f}s "
            f"({cache.computed} computed, the rest from {cache.folder})")

        head = prior.head
        optim = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        epochs, milestones, figures = cfg.epochs, cfg.milestones, {}
        if state is not None:
            epochs, milestones, figures = state["epochs"], state["milestones"], state["figures"]
            validation.history = list(figures.get("validation_mae", []))
        elif cfg.budget_minutes is not None:
            probe = copy.deepcopy(prior)
            probe_optim = torch.optim.SGD(probe.head.parameters(), lr=0.0)
            sample = [level[: cfg.batch_size] for level in feats[False]]
            epochs, milestones, figures["schedule"] = fit_schedule(
                lambda: train_step(probe, probe_optim, sample, cfg, generator), math.ceil(len(items) / cfg.batch_size),
                cfg, cfg.budget_minutes * 60 - (time.time() - start), self.name)
            del probe, probe_optim
        sched = torch.optim.lr_scheduler.MultiStepLR(optim, milestones=milestones, gamma=cfg.gamma)
        card = {
            "method": "A2S stage 1 (Zhou et al., TCSVT), salplug-a2s reimplementation",
            "data": [f"{folder}" for folder in cfg.images] + [f"{len(items)} images"],
            "labels": "none: the activation loss needs no labels; no mask was read",
            "command": self.command(),
            "stored": f"head only; the frozen {cfg.backbone} encoder comes from its '{cfg.backbone_weights}' weight tag",
        }
        n, history, first, seconds = len(items), [], 0, 0.0
        if state is not None:
            history, first, seconds = restore_run(state, "head", head, optim, sched, generator, card, self.name)
        prior.train()
        t0 = time.time() - seconds
        for epoch in range(first, epochs):
            order = torch.randperm(n, generator=generator)
            total, count = 0.0, 0
            for s in range(0, n, cfg.batch_size):
                index = order[s : s + cfg.batch_size]
                flips = random_flips(len(index), cfg.flip, generator).to(cfg.device)
                levels = [torch.where(flips.view(-1, 1, 1, 1), fl[index], nf[index])
                          for nf, fl in zip(feats[False], feats[True] if cfg.flip else feats[False])]
                value = train_step(prior, optim, levels, cfg, generator)
                if not math.isfinite(value):
                    raise RuntimeError(f"a2s-stage1: epoch {epoch + 1}: loss is {value}")
                total, count = total + value * len(index), count + len(index)
            figures.update(validation(lambda x: torch.sigmoid(up(prior.activation(x), tuple(x.shape[-2:])))))
            end_epoch(self.name, prior, cfg.out, card, history, epoch=epoch, epochs=epochs, mean_loss=total / count,
                      optim=optim, sched=sched, started=t0, **figures)
            write_run_state(cfg, cfg.out, STATE_FORMAT, "head", head, optim, sched, generator, card,
                            epochs_done=epoch + 1, epochs=epochs, milestones=milestones, seconds=time.time() - t0,
                            history=history, figures=figures)
        prior.eval()
        log(f"a2s-stage1: done in {time.time() - start:.0f}s")
        return Path(cfg.out)
