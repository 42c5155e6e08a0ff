"""`salplug train lps`: learn the embeddings from images and masks (anchors from noisy masks, log-likelihood loss).

A training step takes a batch of flipped and cropped views, flips each mask pixel with
probability `label_flip` to make the anchor weights (the paper's noise against trusting
the prior too much), scores every pixel against the two anchors and minimises the
negative log-likelihood of the clean mask. The checkpoint is the `lps` refiner's state
with a model card (data, split, command, training figures), rewritten every epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

import salplug
from salplug.components import input_field
from salplug.datasets import half_of, index_folder
from salplug.io import read_image, read_mask, square_uint8
from salplug.resize import resize
from salplug.training import end_epoch, log

from .anchors import flip_labels
from .refiner import BACKBONES, DEFAULTS, LPS


def paired_files(images: Path, masks: Path) -> dict[str, tuple[Path, Path]]:
    """(image, mask) per image stem; an image without a mask is an error naming it."""
    found, _ = index_folder(Path(images))
    labels, _ = index_folder(Path(masks))
    if not found:
        raise ValueError(f"lps training: expected images in {images}, got none")
    missing = sorted(found.keys() - labels.keys())
    if missing:
        raise ValueError(f"lps training: expected a mask in {masks} for every image, got none for {missing[:5]}")
    return {stem: (found[stem], labels[stem]) for stem in found}


def load_pairs(files: Sequence[tuple[Path, Path]], size: int) -> tuple[Tensor, Tensor]:
    """N×3×size×size uint8 images and N×1×size×size uint8 mask coverage (area-resized binary masks)."""
    images, masks = [], []
    for image_path, mask_path in files:
        image = read_image(image_path)
        mask = read_mask(mask_path).astype(np.float32)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"lps training: expected mask {mask_path} of size {image.shape[:2]}, got {mask.shape}")
        images.append(square_uint8(image, size))
        masks.append(square_uint8(mask, size))
    return torch.stack(images), torch.stack(masks)


def augment(images: Tensor, masks: Tensor, crop: float, hflip: bool, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random horizontal flips and square crops (side in [crop, 1] of the image) resized back, for the whole batch."""
    b = images.shape[0]
    scale = crop + (1 - crop) * torch.rand(b, generator=generator)
    shift = (1 - scale)[:, None] * (2 * torch.rand(b, 2, generator=generator) - 1)
    mirror = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0) if hflip else torch.ones(b)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = scale * mirror, scale, shift
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    views = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    labels = F.grid_sample(masks, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return views.clamp(0, 1), labels > 0.5


def train_step(
    refiner: LPS, optim: torch.optim.Optimizer, images: Tensor, masks: Tensor, label_flip: float,
    generator: torch.Generator,
) -> float:
    """One Adam step: anchors from the noisy masks, BCE of the upsampled foreground logits against the clean masks."""
    noisy = flip_labels(masks, label_flip, generator).float()
    logits = resize(refiner.net(images, noisy), tuple(masks.shape[-2:]))
    loss = F.binary_cross_entropy_with_logits(logits, masks.float())
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()
    return float(loss.detach())


class LPSTrainer(salplug.Trainer):
    """LPS training: Adam at lr 1e-3, label flips at 5 %, flips and crops (paper); backbone at a tenth of the lr."""

    name = "lps"

    class Config(salplug.ComponentConfig):
        images: str = input_field(default="../shared/data/sod-dev/images", description="Training image folder.")
        masks: str = input_field(default="../shared/data/sod-dev/masks", description="Mask folder (same stems; >128 is salient).")
        split: Literal["all", "even", "odd"] = Field(
            default="all", description="Images to train on by index in sorted stem order: all, even (0, 2, …) or odd."
        )
        out: str = Field(default="runs/lps/lps.pt", description="Checkpoint to write (rewritten every epoch).")
        backbone: Literal[BACKBONES] = Field(default=DEFAULTS["backbone"], description="Backbone (the paper's: vgg16).")
        backbone_weights: str | None = Field(default="imagenet", description="Initial backbone weight tag (None: random).")
        freeze_backbone: bool = Field(default=False, description="Keep the backbone's weights fixed (train the heads only).")
        backbone_lr_mult: float = Field(default=0.1, ge=0, description="Backbone lr as a multiple of lr when not frozen.")
        size: int = Field(default=DEFAULTS["size"], ge=32, multiple_of=32, description="Training size (square).")
        stride: Literal[1, 2, 4] = Field(default=DEFAULTS["stride"], description="Embedding grid stride (the paper's: 1).")
        channels: int = Field(default=DEFAULTS["channels"], ge=1, description="C, channels per level after sub-pixel upsampling.")
        dim: int = Field(default=DEFAULTS["dim"], ge=1, description="D, embedding dimension (the paper's: 512).")
        region: Literal["conv", "fc"] = Field(default=DEFAULTS["region"], description="Region embedding: conv then average, or average then FC.")
        epochs: int = Field(default=10, ge=1, description="Passes over the split.")
        batch_size: int = Field(default=8, ge=1, description="Images per Adam step.")
        lr: float = Field(default=1e-3, gt=0, description="Adam learning rate of the embedding layers.")
        label_flip: float = Field(default=0.05, ge=0, lt=0.5, description="Probability of flipping each anchor-mask pixel.")
        crop: float = Field(default=0.75, gt=0, le=1, description="Smallest random crop side, as a share of the image (1: no crop).")
        hflip: bool = Field(default=True, description="Random horizontal flips.")
        max_images: int | None = Field(default=None, ge=1, description="Use only the first N images of the split (tests).")
        seed: int = Field(default=0, description="Seed of initialisation, batch order, augmentation and label flips.")
        threads: int = Field(default=0, ge=0, description="torch threads (0: torch's default).")
        device: str = Field(default="cpu", description="Device to train on (cpu, cuda).")

    def run(self) -> Path:
        cfg = self.config
        start = time.time()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)
        pairs = paired_files(Path(cfg.images), Path(cfg.masks))
        stems = half_of(pairs, None if cfg.split == "all" else cfg.split)[: cfg.max_images]
        images, masks = load_pairs([pairs[s] for s in stems], cfg.size)
        log(f"lps: {len(stems)} images ({cfg.split} split) at {cfg.size}px loaded in {time.time() - start:.0f}s")

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
        backbone_note = "frozen" if len(groups) == 1 else f"fine-tuned at lr x{cfg.backbone_lr_mult:g}"
        card = {
            "method": "LPS (Zeng et al., CVPR 2018), salplug-lps reimplementation",
            "data": {"images": cfg.images, "masks": cfg.masks, "split": cfg.split, "count": len(stems),
                     "first": stems[:3], "last": stems[-3:]},
            "split_rule": "salplug.datasets.half_of: index in sorted stem order, even = 0, 2, 4, ...; odd = 1, 3, 5, ...",
            "command": self.command(),
            "stored": f"every learned tensor in fp16; {cfg.backbone} backbone {backbone_note} "
                      f"from its '{cfg.backbone_weights}' weight tag",
        }
        n, history = len(stems), []
        refiner.train()
        t0 = time.time()
        for epoch in range(cfg.epochs):
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for s in range(0, n, cfg.batch_size):
                index = order[s : s + cfg.batch_size]
                batch = images[index].to(cfg.device).float() / 255
                cover = masks[index].to(cfg.device).float() / 255
                views, labels = augment(batch, cover, cfg.crop, cfg.hflip, generator)
                value = train_step(refiner, optim, views, labels, cfg.label_flip, generator)
                if not math.isfinite(value):
                    raise RuntimeError(f"lps: epoch {epoch + 1}: loss is {value}")
                total += value * len(index)
            end_epoch(self.name, refiner, cfg.out, card, history, epoch=epoch, epochs=cfg.epochs, mean_loss=total / n,
                      started=t0)
        refiner.eval()
        log(f"lps: done in {time.time() - start:.0f}s, wrote {cfg.out}")
        return Path(cfg.out)
