"""`salplug train a2s-stage1`: train the stage-1 head on unlabelled images with the activation loss.

The encoder is frozen, so each view's features (original and horizontally flipped, under
their own keys) are computed once through `salplug.train.FeatureCache` and only the head
trains. No label of any kind is read. The run is `salplug.train.fit`'s: resumable, logged,
time-limited by `max_minutes`, data-parallel with `--nproc`.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from pydantic import Field

import salplug
from salplug.train import FeatureCache, Hooks, Progress, fit, log

from .common import up
from .data import Views
from .losses import activation_loss
from .stage1 import A2SStage1
from .training import TrainingConfig, Validation, milestone_schedule, start_run


class Stage1Run(Hooks):
    """The loss over cached encoder levels, and the validation curve at each epoch end."""

    def __init__(self, prior: A2SStage1, feats: dict[bool, list[torch.Tensor]], cfg: A2SStage1Trainer.Config,
                 validation: Validation):
        self.prior, self.feats, self.cfg, self.validation = prior, feats, cfg, validation

    def loss(self, batch: dict) -> torch.Tensor:
        cfg = self.cfg
        index, flips = batch["index"], batch["flip"].view(-1, 1, 1, 1)
        levels = [torch.where(flips, fl[index], nf[index]) for nf, fl in zip(self.feats[False], self.feats[cfg.flip])]
        fused, per_level = self.prior.decision(levels, cfg.size, cfg.size)
        maps = [m.float() for m in (fused, *per_level)]  # the loss in fp32 under the loop's bf16 autocast too
        return activation_loss(maps, cfg.level_weights, l1=cfg.l1, fraction=cfg.sample_fraction)

    def end_epoch(self, epoch: int) -> dict:
        prior = self.prior
        return self.validation(lambda x: torch.sigmoid(up(prior.activation(x), tuple(x.shape[-2:]))))

    def load_state_dict(self, state: dict, progress: Progress) -> None:
        self.validation.history = list(progress.figures.get("validation_mae", []))


class A2SStage1Trainer(salplug.Trainer):
    """Stage 1 of A2S: SGD on the head only, lr 1, 20 epochs (paper defaults)."""

    name = "a2s-stage1"
    example_config = {"epochs": 1, "batch_size": 2, "size": 64, "channels": 8, "backbone_weights": None, "max_images": 4}

    class Config(TrainingConfig):
        out: str = Field(default="runs/a2s/a2s-stage1.pt", description="Checkpoint to write; the run state goes beside it.")
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
        items, images = start_run(cfg, self.name)
        prior = A2SStage1(
            checkpoint=None, backbone=cfg.backbone, backbone_weights=cfg.backbone_weights,
            size=cfg.size, channels=cfg.channels, fuse_stride=cfg.fuse_stride, seed=cfg.seed,
        ).to(cfg.device)
        cache = FeatureCache(prior.backbone, cfg.cache_dir)
        feats: dict[bool, list[torch.Tensor]] = {}
        for flipped in [False, True] if cfg.flip else [False]:
            chunks = []
            for s in range(0, len(items), 16):
                batch = images[s : s + 16].to(cfg.device).float() / 255
                batch = batch.flip(-1) if flipped else batch
                keys = [k + (":flip" if flipped else "") for k, _ in items[s : s + 16]]
                chunks.append(cache(batch, keys))
            feats[flipped] = [torch.cat(level) for level in zip(*chunks)]
        log(f"a2s-stage1: features of {len(items) * len(feats)} views ready in {time.time() - start:.0f}s "
            f"({cache.computed} computed, the rest from {cache.folder})")
        optim = torch.optim.SGD(prior.head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        card = {
            "method": "A2S stage 1 (Zhou et al., TCSVT), salplug-a2s reimplementation",
            "data": [f"{folder}" for folder in cfg.images] + [f"{len(items)} images"],
            "labels": "none: the activation loss needs no labels; no mask was read",
            "command": self.command(),
            "stored": f"head only; the frozen {cfg.backbone} encoder comes from its '{cfg.backbone_weights}' weight tag",
        }
        run = Stage1Run(prior, feats, cfg, Validation(cfg))
        result = fit(trainer=self.name, model=prior, optim=optim, dataset=Views(len(items), cfg.seed, cfg.flip),
                     loss=run.loss, config=cfg, card=card, sched=milestone_schedule(optim, cfg, len(items)), hooks=run)
        prior.eval()
        log(f"a2s-stage1: {result.reason} after {result.progress.step} steps in {time.time() - start:.0f}s")
        return result.checkpoint
