"""`salplug train a2s`: the self-rectifying detector, trained on stage-1 pseudo labels.

1. Pseudo labels: the stage-1 prior's σ(M) on every training image, DenseCRF (A2S
   defaults), 7×7 median; written as PNGs under `labels_dir` (never into the repository)
   and reused by later runs with the same stage-1 checkpoint and size.
2. Training: BCE + SSIM + IoU against the labels; encoder lr = lr × encoder_lr_mult.
3. Online label rectifying: after epoch `rectify_after`, each batch's labels become
   λ·G + (1 − λ)·σ(Y) with the detector's current map Y.

The paper's 25 epochs take about 10 hours on a 2-core CPU (4-5 in bf16). The run is
`salplug.train.fit`'s: its run state carries the rectified labels (`Stage2Run.state_dict`),
so `resume` continues exactly. A state without its labels (`portable_state`, small enough
to commit) resumes with labels rebuilt from the resumed detector.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

import salplug
from salplug.components import read_checkpoint
from salplug.data import read_map, to_uint8, write_map
from salplug.errors import CheckpointError
from salplug.train import Hooks, LoopConfig, Progress, fit, gather, log, parallel_group

from .common import SHIPPED, resolve_checkpoint, up
from .data import Views
from .losses import detector_loss, needs_first_labels, rebuilt_labels, rectifications, rectify
from .pseudo_labels import refine_many
from .stage1 import SHIPPED_FILE as STAGE1_FILE
from .stage1 import A2SStage1
from .stage2 import A2S
from .training import TrainingConfig, Validation, milestone_schedule, start_run


def load_stage1(checkpoint: str) -> A2SStage1:
    """The stage-1 prior with the architecture its checkpoint was trained with."""
    path = resolve_checkpoint(checkpoint, STAGE1_FILE)
    config = dict(read_checkpoint(path)["config"])
    config.update(checkpoint=str(path), output="activation")
    return A2SStage1(config)


def pseudo_labels(
    stage1: A2SStage1, images: torch.Tensor, keys: list[str], folder: Path | None, *, gt_prob: float, median_size: int,
    device: str = "cpu", workers: int = 0,
) -> torch.Tensor:
    """N×1×S×S float labels for uint8 images N×3×S×S; cached as PNGs in `folder`.

    σ(M) runs on `device` in batches; the CRF and median run on the CPU in `workers` processes.
    """
    paths = [None if folder is None else folder / (k.replace("/", "__") + ".png") for k in keys]
    labels = torch.empty(len(keys), 1, *images.shape[-2:], dtype=torch.uint8)
    todo = []
    for i, path in enumerate(paths):
        if path is not None and path.is_file():
            labels[i, 0] = torch.from_numpy(to_uint8(read_map(path)))
        else:
            todo.append(i)
    if todo:
        stage1 = stage1.to(device)
        probs = []
        with torch.no_grad():
            for s in range(0, len(todo), 32):
                x = images[todo[s : s + 32]].to(device).float() / 255
                probs.append(stage1(x).float().cpu())
        made = refine_many(images[todo], torch.cat(probs), gt_prob=gt_prob, median_size=median_size, workers=workers)
        labels[todo] = made
        for i, label in zip(todo, made):
            if paths[i] is not None:
                write_map(paths[i], label[0].numpy().astype(np.float32) / 255)
    return labels.float() / 255


def batch_loss(model: A2S, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of a batch (images, pseudo labels at the working size) and its fp32 logits.

    The network runs in whatever autocast the loop set; the loss is always taken in fp32,
    because SSIM's variances (E[x²] − E[x]²) cancel to below zero in bf16 and the loss becomes −inf.
    """
    logits = up(model.logits(x), tuple(labels.shape[-2:])).float()
    with torch.autocast(x.device.type, enabled=False):
        return detector_loss(logits, labels), logits


class Stage2Run(Hooks):
    """The labels a run trains on and rectifies, the loss against them, and the validation curve.

    Under `--nproc` each rank rectifies the labels of its shard; `after_step` shares them, so
    every rank holds every label.
    """

    def __init__(self, trainer: A2STrainer, model: A2S, images: torch.Tensor, keys: list[str], validation: Validation,
                 labels: torch.Tensor | None, figures: dict, digest: str):
        self.trainer, self.model, self.images, self.keys = trainer, model, images, keys
        self.cfg, self.validation, self.figures, self.digest = trainer.config, validation, figures, digest
        self.labels = None if labels is None else labels.to(trainer.config.device)
        self.epoch, self.rebuilt, self.pending = 0, [], []

    def loss(self, batch: dict) -> torch.Tensor:
        index, mirror = batch["index"], batch["flip"].view(-1, 1, 1, 1)
        x = self.images[index.cpu()].to(self.cfg.device).float() / 255
        g = self.labels[index]
        value, logits = batch_loss(self.model, torch.where(mirror, x.flip(-1), x), torch.where(mirror, g.flip(-1), g))
        if self.epoch >= self.cfg.rectify_after:
            y = torch.sigmoid(logits.detach())
            self.pending.append((index, rectify(g, torch.where(mirror, y.flip(-1), y), self.cfg.rectify_lambda)))
        return value

    def after_step(self, batch: dict) -> None:
        updates, self.pending = self.pending, []
        if parallel_group().world > 1:
            updates = [u for part in gather([(i.cpu(), g.cpu()) for i, g in updates]) for u in part]
        for index, rectified in updates:
            self.labels[index.to(self.labels.device)] = rectified.to(self.labels.device)

    def end_epoch(self, epoch: int) -> dict:
        self.epoch = epoch + 1
        model = self.model
        model.eval()
        figures = self.validation(lambda v: torch.sigmoid(up(model.logits(v), tuple(v.shape[-2:]))))
        model.train()
        return figures

    def state_dict(self) -> dict:
        return {"labels": self.labels.cpu().half(), "stage1_digest": self.digest, "label_figures": self.figures}

    def load_state_dict(self, state: dict, progress: Progress) -> None:
        if state["stage1_digest"] != self.digest:
            raise CheckpointError(f"a2s run state: its labels came from stage-1 checkpoint sha256 {state['stage1_digest']}, "
                                  f"but {self.cfg.stage1_checkpoint} is {self.digest}")
        self.epoch, self.figures = progress.epoch, state["label_figures"]
        progress.figures.update(self.figures)
        self.validation.history = list(progress.figures.get("validation_mae", []))
        labels = state["labels"]
        if labels is None:
            labels = self.trainer.rebuild_labels(self.model, self.images, self.keys, progress.epoch, self.digest)
            progress.figures.setdefault("labels_rebuilt", []).append(progress.epoch)
        self.labels = labels.float().to(self.cfg.device)


class A2STrainer(salplug.Trainer):
    """Stage 2 of A2S. Defaults are the paper's (25 epochs, lr 0.005, decay at 15 and 20, 320 px)."""

    name = "a2s"
    example_config = {"epochs": 1, "batch_size": 2, "size": 64, "channels": 8, "backbone_weights": None, "max_images": 4}

    class Config(TrainingConfig):
        resume_free: ClassVar[frozenset[str]] = LoopConfig.resume_free | {"crf_workers"}

        out: str = Field(default="runs/a2s/a2s.pt", description="Checkpoint to write; the run state goes beside it.")
        stage1_checkpoint: str = Field(default=SHIPPED, description="Stage-1 head for the pseudo labels.")
        labels_dir: str | None = Field(default="runs/a2s/labels", description="Pseudo-label cache (None: memory only).")
        epochs: int = Field(default=25, ge=1, description="Passes over the images.")
        milestones: list[int] = Field(default_factory=lambda: [15, 20], description="Epochs where lr is multiplied by gamma.")
        lr: float = Field(default=0.005, gt=0, description="Decoder learning rate.")
        encoder_lr_mult: float = Field(default=0.1, ge=0, description="Encoder lr = lr × this.")
        flip: bool = Field(default=True, description="Random horizontal flips (labels are rectified unflipped).")
        rectify_after: int = Field(default=2, ge=0, description="Rectify labels from the epoch after this one.")
        rectify_lambda: float = Field(default=0.4, ge=0, le=1, description="G ← λ·G + (1 − λ)·Y.")
        crf_gt_prob: float = Field(default=0.7, gt=0.5, lt=1, description="DenseCRF's trust in the thresholded stage-1 labels.")
        median_size: int = Field(default=7, ge=3, description="Median filter window applied after the CRF.")
        crf_workers: int = Field(default=0, ge=0, description="Processes for the pseudo labels' CRF (0: in this process).")

    def labels(self, images: torch.Tensor, keys: list[str], validation: Validation | None) -> tuple[torch.Tensor, dict, str]:
        """Stage-1 pseudo labels of the training images, their figures (time, validation MAE) and the stage-1 digest."""
        cfg = self.config
        digest = self.stage1_digest()
        stage1 = load_stage1(cfg.stage1_checkpoint)
        folder = None
        if cfg.labels_dir is not None:
            folder = Path(cfg.labels_dir) / f"{digest}-{cfg.size}-gt{cfg.crf_gt_prob}-m{cfg.median_size}"
            folder.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        labels = pseudo_labels(stage1, images, keys, folder, gt_prob=cfg.crf_gt_prob, median_size=cfg.median_size,
                               device=cfg.device, workers=cfg.crf_workers)
        figures = {"label_seconds": round(time.time() - t0, 1)}
        log(f"a2s: pseudo labels ready in {figures['label_seconds']:.0f}s ({folder}); "
            f"mean foreground {float((labels > 0.5).float().mean()):.3f}")
        if validation is not None and validation.images is not None:
            val_labels = pseudo_labels(stage1, validation.images, [f"validation/{i}" for i in range(len(validation.images))],
                                       None, gt_prob=cfg.crf_gt_prob, median_size=cfg.median_size, device=cfg.device,
                                       workers=cfg.crf_workers)
            figures["pseudo_label_validation_mae"] = round(float((val_labels - validation.masks.float()).abs().mean()), 5)
            log(f"a2s: pseudo labels' validation MAE {figures['pseudo_label_validation_mae']:.4f}")
        return labels, figures, digest

    def stage1_digest(self) -> str:
        """The first 12 hex digits of the stage-1 checkpoint's sha256: what the labels came from."""
        path = resolve_checkpoint(self.config.stage1_checkpoint, STAGE1_FILE)
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    def rebuild_labels(self, model: A2S, images: torch.Tensor, keys: list[str], epochs_done: int, digest: str) -> torch.Tensor:
        """Labels for a state that came without them: the resumed detector's maps, mixed with stage 1's
        pseudo labels while their weight λ^k still counts (`losses.rebuilt_labels`)."""
        cfg = self.config
        t0 = time.time()
        times = rectifications(epochs_done, cfg.rectify_after)
        first = None
        if needs_first_labels(times, cfg.rectify_lambda):
            with torch.random.fork_rng():
                torch.manual_seed(cfg.seed)  # as at the start of a fresh run, where an untrained stage 1 draws its weights
                first, _, now = self.labels(images, keys, None)
            if now != digest:
                raise CheckpointError(f"a2s run state: its labels came from stage-1 checkpoint sha256 {digest}, "
                                      f"but {cfg.stage1_checkpoint} is {now}")
        maps = []
        model.eval()
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and torch.device(cfg.device).type == "cuda")
        with torch.no_grad(), torch.autocast(torch.device(cfg.device).type, dtype=torch.bfloat16, enabled=bf16):
            for s in range(0, len(images), 32):
                x = images[s : s + 32].to(cfg.device).float() / 255
                maps.append(torch.sigmoid(up(model.logits(x), tuple(x.shape[-2:])).float()).cpu())
        model.train()
        labels = rebuilt_labels(first, torch.cat(maps), times, cfg.rectify_lambda)
        log(f"a2s: labels rebuilt from the detector after epoch {epochs_done} ({times} rectifications, stage-1 labels "
            f"{'mixed in' if first is not None else 'below 8-bit resolution'}) in {time.time() - t0:.0f}s")
        return labels


    def run(self) -> Path:
        cfg = self.config
        start = time.time()
        items, images = start_run(cfg, self.name)
        validation = Validation(cfg)
        keys = [k for k, _ in items]
        labels, figures, digest = (None, {}, self.stage1_digest()) if cfg.resume else self.labels(images, keys, validation)
        model = A2S(checkpoint=None, backbone=cfg.backbone, backbone_weights=cfg.backbone_weights,
                    size=cfg.size, channels=cfg.channels, seed=cfg.seed).to(cfg.device)
        groups = [{"params": list(model.decoder.parameters()), "lr": cfg.lr}]
        if cfg.encoder_lr_mult > 0:
            groups.append({"params": list(model.backbone.parameters()), "lr": cfg.lr * cfg.encoder_lr_mult})
        else:
            model.backbone.requires_grad_(False)
        optim = torch.optim.SGD(groups, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        card = {
            "method": "A2S stage 2 (Zhou et al., TCSVT), salplug-a2s reimplementation",
            "data": list(cfg.images) + [f"{len(items)} images"],
            "labels": f"stage-1 pseudo labels from {cfg.stage1_checkpoint} (sha256 {digest}); no mask was read",
            "command": self.command(),
            "stored": "encoder + decoder, fp16",
            "training": figures,
        }
        run = Stage2Run(self, model, images, keys, validation, labels, figures, digest)
        result = fit(trainer=self.name, model=model, optim=optim, dataset=Views(len(items), cfg.seed, cfg.flip),
                     loss=run.loss, config=cfg, card=card, sched=milestone_schedule(optim, cfg, len(items)), hooks=run)
        model.eval()
        log(f"a2s: {result.reason} after {result.progress.step} steps in {time.time() - start:.0f}s")
        return result.checkpoint
