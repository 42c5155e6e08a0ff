"""`salplug train ldps`: LDPS without ground truth, from photos and a detector's maps of them.

The only supervision is each prior's confident pixels (`relations.pair_labels`); masks are
never read. One sample is an (image, prior) pair: with several prior folders every photo
comes once per detector, so a checkpoint can learn from a mix of detectors' mistakes. A
share of the photos is held out (`salplug.data._datasets.hold_out`, the rule the LPS trainer
uses) so that choices can be checked on them, never on the report set. Runs on
`salplug.train.fit`, which owns the step: resumable, logged, state beside `out`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field
from torch.utils.data import Dataset

import salplug
from salplug.data import FolderDataset, hold_out
from salplug.components import input_field
from salplug.train import LoopConfig, TrainingSet, fit, log, poly_schedule

from .model import LDPSNet
from .refiner import LDPS
from .relations import pair_labels, pair_loss

OUT_OF_FOLD = "salplug baseline out-of-fold --data \"$SALPLUG_DATA/duts-tr\" -o runs/baseline/duts-tr-oof"
"""How to make the default prior maps: the baseline plugin's fold models map each image they never saw."""



class PriorPairs(Dataset):
    """Every (photo, prior folder) pair: the training sets of each prior folder one after another."""

    def __init__(self, sets: list[TrainingSet]):
        self.sets = sets

    def __len__(self) -> int:
        return sum(len(s) for s in self.sets)

    def __getitem__(self, item: tuple[int, int]) -> dict:
        epoch, index = item
        for part in self.sets:
            if index < len(part):
                return part[(epoch, index)]
            index -= len(part)
        raise IndexError(item)

    def check(self) -> dict[str, str]:
        """Every folder's unusable pairs, left out (`TrainingSet.check`)."""
        return {path: why for part in self.sets for path, why in part.check().items()}


def optimiser(net: LDPSNet, lr: float, head_lr_mult: float, momentum: float = 0.9, weight_decay: float = 5e-4):
    """SGD over encoder blocks 3-6 at `lr` and the head at `lr × head_lr_mult` (the paper's split)."""
    tuned, head = net.trainable()
    return torch.optim.SGD([{"params": tuned, "lr": lr}, {"params": head, "lr": lr * head_lr_mult}],
                           momentum=momentum, weight_decay=weight_decay)


def pair_step_loss(refiner: LDPS, images: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """The pair loss of a batch on the priors' confident pixels (the frozen low encoder blocks without gradients)."""
    cfg, net = refiner.config, refiner.net
    labels, valid = pair_labels(priors, cfg.theta_afg, cfg.theta_abg)
    with torch.no_grad():
        low = net.encoder.low(images)
    return pair_loss(net(images, priors, cfg.theta_fg, cfg.topk, low=low), labels, valid)


def train_step(refiner: LDPS, optim: torch.optim.Optimizer, images: torch.Tensor, priors: torch.Tensor) -> float:
    """One SGD step of `pair_step_loss` outside the loop (the step the speed benchmark times); returns the loss."""
    loss = pair_step_loss(refiner, images, priors)
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()
    return float(loss.detach())


class LDPSTrainer(salplug.Trainer):
    """LDPS without ground truth: photos and a detector's maps of them, SGD with polynomial decay (paper)."""

    name = "ldps"
    example_config = {"epochs": 1, "batch_size": 2, "size": 64, "hold_out": 2, "subset": 4, "workers": 0, "backbone_weights": None}

    class Config(LoopConfig):
        data: str = input_field(default="$SALPLUG_DATA/duts-tr", description="Dataset folder with images/ (its masks are never read).")
        priors: list[str] = input_field(
            default_factory=lambda: ["runs/baseline/duts-tr-oof"], min_length=1,
            description="Folders of prior maps of those images (same stems); each folder adds one pair per photo.",
            how=f"make them with: {OUT_OF_FOLD}")
        out: str = Field(default="runs/ldps/ldps.pt", description="Checkpoint to write; the run state goes beside it.")
        hold_out: int = Field(default=300, ge=0, description="Photos kept out of training for validation (evenly spaced over sorted stems).")
        subset: int | None = Field(default=None, ge=1, description="Train on this many of the other photos, evenly spaced (None: all).")
        epochs: int = Field(default=2, ge=1, description="Passes over the pairs.")
        batch_size: int = Field(default=8, ge=1, description="Image-prior pairs per SGD step.")
        size: int = Field(default=256, ge=32, description="Training (and the checkpoint's working) size.")
        lr: float = Field(default=5e-4, gt=0, description="Encoder learning rate (polynomial decay, power 0.9); the head gets lr × head_lr_mult.")
        head_lr_mult: float = Field(default=10.0, gt=0, description="Head learning rate as a multiple of lr (paper: 10).")
        hflip: bool = Field(default=True, description="Random horizontal mirrors.")
        init: str | None = Field(default=None, description="Start from this checkpoint instead of ImageNet + a random head.")
        backbone_weights: str | None = Field(default="imagenet", description="Encoder weight tag (None: random, for tests).")

    def run(self) -> Path:
        cfg = self.config
        sets, counts, validation = [], {}, []
        for folder in cfg.priors:
            data = FolderDataset(Path(cfg.data), priors_dir=Path(folder))
            for path, reason in sorted(data.problems.items()):
                log(f"ldps: left out {path}: {reason}")
            keys, validation = hold_out(data.keys, cfg.hold_out, cfg.subset)
            sets.append(TrainingSet(data, keys, cfg.size, hflip=cfg.hflip, seed=cfg.seed))
            counts[folder] = len(keys)
        dataset = PriorPairs(sets)
        refiner = LDPS(checkpoint=cfg.init, size=cfg.size, seed=cfg.seed, backbone_weights=cfg.backbone_weights).to(cfg.device)
        refiner.net.train()
        optim = optimiser(refiner.net, cfg.lr, cfg.head_lr_mult)
        sched = poly_schedule(optim, cfg.epochs * -(-len(dataset) // cfg.batch_size))
        card = {
            "method": "LDPS (Chen et al., AAAI 2020), salplug-ldps reimplementation",
            "data": {"root": cfg.data, "pairs_per_prior_folder": counts, "held_out": len(validation),
                     "held_out_first": validation[:3], "subset": cfg.subset, "first": sets[0].keys[:3]},
            "labels": "none: supervision is the priors' confident pixels only (no masks read)",
            "split_rule": "salplug.data._datasets.hold_out: hold_out stems evenly spaced over the sorted stems never "
                          "trained on; then the subset rule on the rest",
            "command": self.command(),
            "stored": "head + MobileNetV2 blocks 3-6 in fp16; stem and blocks 0-2 from the 'imagenet' weight tag",
        }
        log(f"ldps: training on {len(dataset)} pairs ({counts}) of {cfg.data}, {len(validation)} photos held out")
        result = fit(trainer=self.name, model=refiner, optim=optim, dataset=dataset, config=cfg, card=card, sched=sched,
                     loss=lambda batch: pair_step_loss(refiner, batch["image"], batch["prior"]))
        log(f"ldps: {result.reason} after {result.progress.step} steps; wrote {result.checkpoint}")
        return result.checkpoint
