"""`salplug train baseline`: supervised training on DUTS-TR masks, all of it or all but one fold.

The loss is binary cross-entropy plus the soft IoU loss (1 − Σps / Σ(p + s − ps)), the
pair most recent detectors train with; Adam with polynomial decay, the encoder at a tenth
of the decoder's learning rate; random crops and mirrors. With ``fold=k`` it trains on
every fold but k (`salplug.data._datasets.split`), so fold k's maps come from a model that never
saw those images' masks: the out-of-fold maps label-free trainers learn from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

import salplug
from salplug.components import input_field
from salplug.data import FolderDataset, split, subset
from salplug.train import LoopConfig, TrainingSet, fit, log, poly_schedule

from .prior import BACKBONES, DEFAULTS, Baseline


def saliency_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE + soft IoU of logits against mask coverage, both B×1×H×W; in fp32 whatever the network's precision."""
    logits, mask = logits.float(), mask.float()
    bce = F.binary_cross_entropy_with_logits(logits, mask)
    p = torch.sigmoid(logits)
    inter = (p * mask).sum(dim=(2, 3))
    union = (p + mask - p * mask).sum(dim=(2, 3))
    return bce + (1 - (inter + 1) / (union + 1)).mean()


def training_keys(dataset: FolderDataset, count: int | None, k: int, fold: int | None) -> list[str]:
    """The stems a run trains on: the subset rule first, then every fold but `fold`."""
    keys = subset(dataset.keys, count)
    return keys if fold is None else split(keys, k, fold, "train")


class BaselineTrainer(salplug.Trainer):
    """Supervised training of the `baseline` prior on a dataset folder with masks (DUTS-TR)."""

    name = "baseline"
    example_config = {"epochs": 1, "batch_size": 2, "size": 64, "channels": 16, "subset": 8, "workers": 0}

    class Config(LoopConfig):
        data: str = input_field(default="$SALPLUG_DATA/duts-tr", description="Dataset folder with images/ and masks/.")
        out: str = Field(default="runs/baseline/baseline.pt", description="Checkpoint to write; the run state goes beside it.")
        subset: int | None = Field(default=None, ge=1, description="Train on this many images spread evenly over the sorted stems (None: all).")
        folds: int = Field(default=2, ge=2, description="Folds of the out-of-fold rule (index in sorted order modulo folds).")
        fold: int | None = Field(default=None, ge=0, description="Leave this fold out of training (None: train on all).")
        backbone: Literal[BACKBONES] = Field(default=DEFAULTS["backbone"], description="Encoder with offline ImageNet weights.")
        size: int = Field(default=DEFAULTS["size"], ge=32, multiple_of=32, description="Square training size.")
        channels: int = Field(default=DEFAULTS["channels"], ge=8, multiple_of=8, description="Decoder width.")
        epochs: int = Field(default=6, ge=1, description="Passes over the training images.")
        lr: float = Field(default=1e-3, gt=0, description="Adam learning rate of the decoder (polynomial decay, power 0.9).")
        backbone_lr_mult: float = Field(default=0.1, ge=0, description="Encoder lr as a multiple of lr (0: frozen).")
        crop: float = Field(default=0.75, gt=0, le=1, description="Smallest crop side as a share of the photo's.")
        hflip: bool = Field(default=True, description="Random horizontal mirrors.")
        channels_last: bool = Field(default=True, description="Channels-last tensors (a training step 1.6-1.7x faster on a 2-core x86 CPU, BENCHMARKS.md).")

        @model_validator(mode="after")
        def _fold_in_range(self):
            if self.fold is not None and self.fold >= self.folds:
                raise ValueError(f"fold: expected 0..{self.folds - 1} with folds={self.folds}, got {self.fold}")
            return self

    def run(self) -> Path:
        cfg = self.config
        data = FolderDataset(Path(cfg.data), masks=True)
        for path, reason in sorted(data.problems.items()):
            log(f"baseline: left out {path}: {reason}")
        keys = training_keys(data, cfg.subset, cfg.folds, cfg.fold)
        dataset = TrainingSet(data, keys, cfg.size, crop=cfg.crop, hflip=cfg.hflip, seed=cfg.seed)
        prior = Baseline(checkpoint=None, backbone=cfg.backbone, size=cfg.size, channels=cfg.channels,
                         seed=cfg.seed).to(cfg.device)
        layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
        prior.to(memory_format=layout)
        groups = [{"params": list(prior.decoder.parameters()), "lr": cfg.lr}]
        if cfg.backbone_lr_mult > 0:
            groups.append({"params": list(prior.backbone.parameters()), "lr": cfg.lr * cfg.backbone_lr_mult})
        else:
            prior.backbone.requires_grad_(False)
        optim = torch.optim.Adam(groups)
        sched = poly_schedule(optim, cfg.epochs * -(-len(keys) // cfg.batch_size))

        def loss(batch) -> torch.Tensor:
            logits = F.interpolate(prior.logits(batch["image"].contiguous(memory_format=layout)), size=batch["mask"].shape[-2:], mode="bilinear",
                                   align_corners=False)
            return saliency_loss(logits.float(), batch["mask"])

        held = "none" if cfg.fold is None else f"fold {cfg.fold} of {cfg.folds} (index in sorted order mod {cfg.folds})"
        card = {
            "method": "salplug-baseline: MobileNetV2/EfficientNet-Lite0 encoder + pyramid decoder, BCE + IoU loss",
            "data": {"root": cfg.data, "masks": True, "count": len(keys), "subset": cfg.subset, "folds": cfg.folds,
                     "fold": cfg.fold, "held_out": held,
                     "first": keys[:3], "last": keys[-3:]},
            "split_rule": "salplug.data._datasets.subset (evenly spaced over sorted stems), then salplug.data._datasets.split",
            "command": self.command(),
            "stored": f"every learned tensor in fp16; {cfg.backbone} encoder fine-tuned from its 'imagenet' tag",
        }
        log(f"baseline: training on {len(keys)} images of {cfg.data} (held out: {held}) at {cfg.size}px")
        result = fit(trainer=self.name, model=prior, optim=optim, dataset=dataset, loss=loss, config=cfg, card=card,
                     sched=sched)
        log(f"baseline: {result.reason} after {result.progress.step} steps; wrote {result.checkpoint}")
        return result.checkpoint
