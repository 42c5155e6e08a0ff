"""`salplug train lps`: learn the embeddings from images and masks (anchors from noisy masks, log-likelihood loss).

A training step takes a batch of cropped and mirrored views, flips each mask pixel with
probability `label_flip` to make the anchor weights (the paper's noise against trusting
the prior too much), scores every pixel against the two anchors and minimises the
negative log-likelihood of the clean mask. `anchors: mix` takes half of the anchor weights
from a detector's maps instead (see the README), so training sees the soft, wrong priors
that testing gets. Runs on `salplug.train.fit`, which owns the step: resumable, logged, state beside `out`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

import salplug
from salplug.components import input_field
from salplug.data import FolderDataset, held_fold, hold_out
from salplug.ops import resize
from salplug.train import LoopConfig, TrainingSet, fit, log, poly_schedule

from .anchors import flip_labels
from .refiner import BACKBONES, DEFAULTS, LPS

OUT_OF_FOLD = "salplug baseline out-of-fold --data \"$SALPLUG_DATA/duts-tr\" -o runs/baseline/duts-tr-oof"
"""How to make the default prior maps: the baseline plugin's fold models map each image they never saw."""



def anchor_weights(labels: torch.Tensor, prior: torch.Tensor | None, source: str, label_flip: float) -> torch.Tensor:
    """Anchor weights per sample: the mask with flipped pixels, the prior map, or either with probability ½ (`mix`)."""
    noisy = flip_labels(labels, label_flip).float()
    if source == "mask":
        return noisy
    if source == "prior":
        return prior
    use_prior = torch.rand(labels.shape[0], 1, 1, 1, device=labels.device) < 0.5
    return torch.where(use_prior, prior, noisy)


def anchor_loss(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the clean mask: BCE of the foreground logits, upsampled to the mask's size."""
    logits = resize(net(images, weights), tuple(labels.shape[-2:]))
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


class LPSTrainer(salplug.Trainer):
    """LPS training on a dataset with masks (DUTS-TR): Adam at lr 1e-3, 5 % label flips, crops and mirrors (paper)."""

    name = "lps"
    example_config = {"epochs": 1, "batch_size": 2, "size": 64, "channels": 8, "dim": 8, "hold_out": 2, "subset": 4, "workers": 0, "backbone_weights": None}

    class Config(LoopConfig):
        data: str = input_field(default="$SALPLUG_DATA/duts-tr", description="Dataset folder with images/ and masks/ (>128 is salient).")
        priors: str | None = input_field(
            default=None, description="Folder of prior maps (same stems) for `anchors: prior` or `mix`.",
            how=f"make them with: {OUT_OF_FOLD}",
        )
        anchors: Literal["mask", "prior", "mix"] = Field(
            default="mask", description="Anchor weights in training: the noisy mask (paper), the prior maps, or half each.")
        out: str = Field(default="runs/lps/lps.pt", description="Checkpoint to write; the run state goes beside it.")
        hold_out: int = Field(default=300, ge=0, description="Images kept out of training for validation (evenly spaced over sorted stems).")
        subset: int | None = Field(default=None, ge=1, description="Train on this many of the other images, evenly spaced (None: all).")
        fold: int | None = Field(default=None, ge=0, description="Train only on fold k of `folds` (salplug.data._datasets.held_fold): the images "
                                 "a fold-k detector never trained on, for backbone 'baseline' with weights 'foldk'.")
        folds: int = Field(default=2, ge=2, description="Folds of `fold` (the baseline's out-of-fold models use 2).")
        backbone: Literal[BACKBONES] = Field(default=DEFAULTS["backbone"], description="Backbone (the paper's: vgg16; 'baseline': "
                                             "the baseline detector's decoder maps, weights a baseline checkpoint tag).")
        backbone_weights: str | None = Field(default="imagenet", description="Initial backbone weight tag (None: random).")
        freeze_backbone: bool = Field(default=False, description="Keep the backbone's weights fixed (train the heads only).")
        backbone_lr_mult: float = Field(default=0.1, ge=0, description="Backbone lr as a multiple of lr when not frozen.")
        size: int = Field(default=DEFAULTS["size"], ge=32, multiple_of=32, description="Training size (square).")
        stride: Literal[1, 2, 4] = Field(default=DEFAULTS["stride"], description="Embedding grid stride (the paper's: 1).")
        channels: int = Field(default=DEFAULTS["channels"], ge=1, description="C, channels per level after sub-pixel upsampling.")
        dim: int = Field(default=DEFAULTS["dim"], ge=1, description="D, embedding dimension (the paper's: 512).")
        region: Literal["conv", "fc"] = Field(default=DEFAULTS["region"], description="Region embedding: conv then average, or average then FC.")
        epochs: int = Field(default=2, ge=1, description="Passes over the training images.")
        batch_size: int = Field(default=8, ge=1, description="Images per Adam step.")
        lr: float = Field(default=1e-3, gt=0, description="Adam learning rate of the embedding layers (polynomial decay, power 0.9).")
        label_flip: float = Field(default=0.05, ge=0, lt=0.5, description="Probability of flipping each anchor-mask pixel.")
        crop: float = Field(default=0.75, gt=0, le=1, description="Smallest crop side, as a share of the photo's (1: no crop).")
        hflip: bool = Field(default=True, description="Random horizontal mirrors.")

        @model_validator(mode="after")
        def _priors_when_used(self):
            if self.anchors != "mask" and self.priors is None:
                raise ValueError(f"priors: expected a folder of prior maps with anchors={self.anchors!r}, got none")
            return self

    def run(self) -> Path:
        cfg = self.config
        priors = None if cfg.anchors == "mask" else Path(cfg.priors)
        data = FolderDataset(Path(cfg.data), masks=True, priors_dir=priors)
        for path, reason in sorted(data.problems.items()):
            log(f"lps: left out {path}: {reason}")
        keys, validation = hold_out(data.keys, cfg.hold_out, cfg.subset)
        if cfg.fold is not None:
            fold = held_fold(cfg.data, cfg.folds, cfg.fold)
            keys = [k for k in keys if k in fold]
        dataset = TrainingSet(data, keys, cfg.size, crop=cfg.crop, hflip=cfg.hflip, seed=cfg.seed)
        refiner = LPS(
            checkpoint=None, backbone=cfg.backbone, backbone_weights=cfg.backbone_weights, size=cfg.size,
            stride=cfg.stride, channels=cfg.channels, dim=cfg.dim, region=cfg.region, seed=cfg.seed,
        ).to(cfg.device)
        net = refiner.net
        heads = [p for name, p in net.named_parameters() if not name.startswith("backbone.")]
        groups = [{"params": heads, "lr": cfg.lr}]
        if cfg.freeze_backbone or cfg.backbone_lr_mult == 0:
            net.backbone.requires_grad_(False)
        else:
            groups.append({"params": list(net.backbone.parameters()), "lr": cfg.lr * cfg.backbone_lr_mult})
        optim = torch.optim.Adam(groups)
        sched = poly_schedule(optim, cfg.epochs * -(-len(keys) // cfg.batch_size))

        def loss(batch) -> torch.Tensor:
            labels = batch["mask"] > 0.5
            weights = anchor_weights(labels, batch.get("prior"), cfg.anchors, cfg.label_flip)
            return anchor_loss(net, batch["image"], labels, weights)

        backbone_note = "frozen" if len(groups) == 1 else f"fine-tuned at lr x{cfg.backbone_lr_mult:g}"
        card = {
            "method": "LPS (Zeng et al., CVPR 2018), salplug-lps reimplementation",
            "data": {"root": cfg.data, "masks": True, "count": len(keys), "subset": cfg.subset, "fold": cfg.fold, "folds": cfg.folds,
                     "held_out": len(validation), "held_out_first": validation[:3],
                     "anchors": cfg.anchors, "priors": cfg.priors, "first": keys[:3], "last": keys[-3:]},
            "split_rule": "salplug.data._datasets.hold_out: hold_out stems evenly spaced over the sorted stems "
                          "(salplug.data._datasets.subset) never trained on; then the subset rule on the rest"
                          + ("" if cfg.fold is None else f", then only fold {cfg.fold} of {cfg.folds} (salplug.data._datasets.held_fold)"),
            "command": self.command(),
            "stored": f"every learned tensor in fp16; {cfg.backbone} backbone {backbone_note} "
                      f"from its '{cfg.backbone_weights}' weight tag",
        }
        log(f"lps: training on {len(keys)} images of {cfg.data} ({len(validation)} held out), anchors from "
            f"{cfg.anchors}, at {cfg.size}px")
        result = fit(trainer=self.name, model=refiner, optim=optim, dataset=dataset, loss=loss, config=cfg, card=card,
                     sched=sched)
        log(f"lps: {result.reason} after {result.progress.step} steps; wrote {result.checkpoint}")
        return result.checkpoint
