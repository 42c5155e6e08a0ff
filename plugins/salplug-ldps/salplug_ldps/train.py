"""Train LDPS without ground truth: unlabelled images and any detector's prior maps.

Python API: `load_pairs` reads (image, prior) folder pairs, `train` fine-tunes the network
and writes a checkpoint. The registered trainer runs both::

    salplug train ldps --set 'images=[DIR, ...]' --set 'priors=[DIR, ...]' --set out=ldps.pt [--set steps=720]

``python -m salplug_ldps.train --images DIR --priors DIR ... --output ldps.pt`` is the same
job with the flags the shipped checkpoint's card records. The i-th images folder pairs with
the i-th priors folder; files match by stem. Masks are never read: the only supervision is
the prior's confident pixels.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pydantic import Field, model_validator

import salplug
from salplug.components import ComponentConfig, input_field
from salplug.datasets import index_folder
from salplug.io import read_image, read_map

from .refiner import LDPS
from .relations import pair_labels, pair_loss


@dataclass
class Pairs:
    """Images and priors resized to size×size, uint8, with where each came from."""

    images: torch.Tensor  # N×3×S×S uint8
    priors: torch.Tensor  # N×1×S×S uint8
    sources: list[str] = field(default_factory=list)


def load_pairs(folders: Sequence[tuple[str | Path, str | Path]], size: int) -> Pairs:
    """Every image that has a prior of the same stem, for each (images, priors) folder pair."""
    images, priors, sources = [], [], []
    for image_dir, prior_dir in folders:
        found, _ = index_folder(Path(image_dir))
        maps, _ = index_folder(Path(prior_dir))
        keys = sorted(set(found) & set(maps))
        if not keys:
            raise SystemExit(f"no image in {image_dir} has a prior of the same name in {prior_dir}")
        for key in keys:
            image = cv2.resize(read_image(found[key]), (size, size), interpolation=cv2.INTER_AREA)
            prior = cv2.resize(read_map(maps[key]), (size, size), interpolation=cv2.INTER_AREA)
            images.append(torch.from_numpy(np.round(image * 255).astype(np.uint8)).permute(2, 0, 1))
            priors.append(torch.from_numpy(np.round(prior * 255).astype(np.uint8))[None])
        sources.append(f"{image_dir} + {prior_dir}: {len(keys)} pairs")
    return Pairs(torch.stack(images), torch.stack(priors), sources)


def poly(step: int, total: int, power: float = 0.9) -> float:
    return (1 - step / total) ** power


def train(
    refiner: LDPS,
    pairs: Pairs,
    *,
    steps: int,
    batch_size: int = 8,
    lr: float = 5e-4,
    head_lr_mult: float = 10.0,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    seed: int = 0,
    output: str | Path | None = None,
    card: dict[str, Any] | None = None,
    save_every: int = 50,
    log=print,
) -> dict[str, Any]:
    """SGD with polynomial decay; encoder blocks 3-6 at `lr`, the head at `lr * head_lr_mult`.

    Each step draws `batch_size` random pairs, flips each with probability 1/2 and
    minimises the pair loss on the prior's confident pixels. Returns training figures.
    """
    cfg = refiner.config
    rng = random.Random(seed)
    torch.manual_seed(seed)
    net = refiner.net
    net.train()
    tuned, head = net.trainable()
    optim = torch.optim.SGD(
        [{"params": tuned, "lr": lr}, {"params": head, "lr": lr * head_lr_mult}],
        momentum=momentum,
        weight_decay=weight_decay,
    )
    bases = [g["lr"] for g in optim.param_groups]
    n = pairs.images.shape[0]
    start, history = time.time(), []
    running = None
    figures: dict[str, Any] = {}
    for step in range(steps):
        for group, base in zip(optim.param_groups, bases):
            group["lr"] = base * poly(step, steps)
        index = [rng.randrange(n) for _ in range(batch_size)]
        images = pairs.images[index].float() / 255
        priors = pairs.priors[index].float() / 255
        flip = torch.tensor([rng.random() < 0.5 for _ in index])
        images[flip] = images[flip].flip(-1)
        priors[flip] = priors[flip].flip(-1)
        labels, valid = pair_labels(priors, cfg.theta_afg, cfg.theta_abg)
        with torch.no_grad():
            low = net.encoder.low(images)
        logits = net(images, priors, cfg.theta_fg, cfg.topk, low=low)
        loss = pair_loss(logits, labels, valid)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        value = loss.detach().item()
        if not math.isfinite(value):
            raise RuntimeError(f"step {step}: loss is {value}")
        running = value if running is None else 0.9 * running + 0.1 * value
        if step % 10 == 0 or step == steps - 1:
            history.append((step, round(running, 4)))
            log(f"step {step + 1}/{steps} loss {value:.4f} (smoothed {running:.4f}) {time.time() - start:.0f}s")
        figures = {
            "steps": step + 1,
            "batch_size": batch_size,
            "train_seconds": round(time.time() - start, 1),
            "final_smoothed_loss": round(running, 4),
            "loss_history": history,
        }
        if output is not None and ((step + 1) % save_every == 0 or step == steps - 1):
            net.eval()
            refiner.save_weights(output, {**(card or {}), "training": figures})
            net.train()
    net.eval()
    return figures


SOD_DEV = "../shared/data/sod-dev"


class LDPSTrainer(salplug.Trainer):
    """LDPS without ground truth: (images, priors) folder pairs, SGD with polynomial decay (paper).

    The defaults are the shipped checkpoint's recipe: sod-dev's images with each of its three
    published prior sets, plus the unlabelled BSDS photos with MB+ priors made beforehand by
    ``salplug run --chain plugins/salplug-classic/chains/mbd-plus.yaml ../shared/data/bsds-unlabeled/images -o runs/ldps/bsds-mbdplus``.
    """

    name = "ldps"

    class Config(ComponentConfig):
        images: list[str] = input_field(
            default_factory=lambda: [f"{SOD_DEV}/images"] * 3 + ["../shared/data/bsds-unlabeled/images"],
            min_length=1,
            description="Folders of unlabelled images; the i-th pairs with the i-th priors folder.",
        )
        priors: list[str] = input_field(
            default_factory=lambda: [f"{SOD_DEV}/priors/{p}" for p in ("amulet", "dss", "picanet")]
            + ["runs/ldps/bsds-mbdplus"],
            min_length=1,
            description="Folders of prior maps, files matched to images by stem (no masks are read).",
            how="make a folder of maps with salplug run, e.g. salplug run --chain plugins/salplug-classic/chains/"
                "mbd-plus.yaml ../shared/data/bsds-unlabeled/images -o runs/ldps/bsds-mbdplus",
        )
        out: str = Field(default="runs/ldps/ldps.pt", description="Checkpoint to write (rewritten every 50 steps).")
        steps: int = Field(default=720, ge=1, description="SGD steps of `batch_size` random pairs.")
        batch_size: int = Field(default=8, ge=1, description="Image-prior pairs per SGD step.")
        size: int = Field(default=256, ge=32, description="Training (and the checkpoint's working) size.")
        lr: float = Field(default=5e-4, gt=0, description="Encoder learning rate; the head gets lr × head_lr_mult.")
        head_lr_mult: float = Field(default=10.0, gt=0, description="Head learning rate as a multiple of lr (paper: 10).")
        seed: int = Field(default=0, description="Seed of initialisation and sampling.")
        threads: int = Field(default=0, ge=0, description="torch threads (0: torch's default).")
        init: str | None = Field(default=None, description="Start from this checkpoint instead of ImageNet + a random head.")
        backbone_weights: str | None = Field(default="imagenet", description="Encoder weight tag (None: random, for tests).")

        @model_validator(mode="after")
        def _paired(self):
            if len(self.images) != len(self.priors):
                raise ValueError(f"expected one priors folder per images folder, got {len(self.images)} and {len(self.priors)}")
            return self

    def run(self) -> Path:
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        refiner = LDPS(checkpoint=cfg.init, size=cfg.size, seed=cfg.seed, backbone_weights=cfg.backbone_weights)
        t0 = time.time()
        pairs = load_pairs(list(zip(cfg.images, cfg.priors)), cfg.size)
        print(f"loaded {pairs.images.shape[0]} pairs in {time.time() - t0:.0f}s: {pairs.sources}", flush=True)
        card = {
            "method": "LDPS (Chen et al., AAAI 2020), salplug-ldps reimplementation",
            "data": pairs.sources,
            "labels": "none: supervision is the priors' confident pixels only (no masks read)",
            "command": self.command(),
            "stored": "head + MobileNetV2 blocks 3-6 in fp16; stem and blocks 0-2 from the 'imagenet' weight tag",
        }
        train(refiner, pairs, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, head_lr_mult=cfg.head_lr_mult,
              seed=cfg.seed, output=cfg.out, card=card)
        return Path(cfg.out)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m salplug_ldps.train``: the `ldps` trainer with its original flags (the shipped card's command)."""
    parser = argparse.ArgumentParser(prog="python -m salplug_ldps.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", action="append", required=True, help="folder of unlabelled images (repeatable)")
    parser.add_argument("--priors", action="append", required=True, help="folder of prior maps for the --images before it")
    parser.add_argument("--output", "-o", required=True, help="checkpoint file to write")
    parser.add_argument("--steps", type=int, default=720)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-4, help="encoder learning rate (head: x --head-lr-mult)")
    parser.add_argument("--head-lr-mult", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--init", default=None, help="start from this checkpoint instead of ImageNet + random head")
    args = parser.parse_args(argv)
    try:
        trainer = LDPSTrainer(
            images=args.images, priors=args.priors, out=args.output, steps=args.steps, batch_size=args.batch_size,
            size=args.size, lr=args.lr, head_lr_mult=args.head_lr_mult, seed=args.seed, threads=args.threads,
            init=args.init,
        )
    except salplug.ConfigError as err:
        parser.error(str(err))
    print(f"wrote {trainer.run()}")


if __name__ == "__main__":
    main()
