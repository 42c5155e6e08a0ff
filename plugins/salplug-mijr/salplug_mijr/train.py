"""`salplug train mijr`: fit the pool (one labelled half + unlabelled photos, each with base maps) and save its index.

Masks are read only for the labelled part and only train the pair filter; the unlabelled
photos join the pool for retrieval and re-learning.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

import salplug
from salplug.components import input_field
from salplug.datasets import half_of, index_folder
from salplug.io import read_image, read_map, read_mask
from salplug.training import log

from .pool import PoolImage
from .refiner import MIJR


def pool_images(images: Path, maps: Path, masks: Path | None, stems: list[str] | None = None) -> list[PoolImage]:
    """Pool entries for every image of a folder (or `stems` of it) with its base map and, if `masks`, its mask."""
    found, _ = index_folder(images)
    base, _ = index_folder(maps)
    truth = index_folder(masks)[0] if masks is not None else {}
    stems = sorted(found) if stems is None else stems
    missing = [s for s in stems if s not in base or (masks is not None and s not in truth)]
    if missing:
        raise ValueError(f"mijr training: expected a base map in {maps}" + (f" and a mask in {masks}" if masks else "")
                         + f" for every image, got none for {missing[:5]}")
    out = []
    for stem in stems:
        image = read_image(found[stem])
        saliency = read_map(base[stem])
        mask = read_mask(truth[stem]) if masks is not None else None
        for name, array in (("base map", saliency), ("mask", mask)):
            if array is not None and array.shape != image.shape[:2]:
                raise ValueError(f"mijr training: expected the {name} of {stem} at {image.shape[:2]}, got {array.shape}")
        out.append(PoolImage(stem, image, saliency, mask))
    return out


class MIJRTrainer(salplug.Trainer):
    """Fit an MIJR pool: analysis of every pool image, the feature projection, and the pair filter."""

    name = "mijr"

    class Config(salplug.ComponentConfig):
        images: str = input_field(default="../shared/data/sod-dev/images", description="Labelled image folder.")
        maps: str = input_field(default="../shared/data/sod-dev/priors/dss", description="Base maps of the labelled images.")
        masks: str = input_field(default="../shared/data/sod-dev/masks", description="Masks of the labelled images (>128 is salient).")
        split: Literal["all", "even", "odd"] = Field(default="even", description="Labelled images used, by index in sorted stem order.")
        extra_images: str | None = input_field(default="../shared/data/bsds-unlabeled/images", description="Unlabelled pool photos (None: none).")
        extra_maps: str | None = input_field(default=None, description="Base maps of the unlabelled photos (required with extra_images).",
                                             how="make them with salplug run, e.g. salplug run --chain examples/chains/demo.yaml "
                                                 "../shared/data/bsds-unlabeled/images -o runs/mijr/extra-maps")
        max_images: int | None = Field(default=None, ge=2, description="Use only the first N labelled (and N unlabelled) images (tests).")
        out: str = Field(default="runs/mijr/pool.pt", description="Pool index to write.")
        backbone: str = Field(default="mobilenetv2_100", description="Registry backbone of the instance features.")
        backbone_weights: str | None = Field(default="imagenet", description="Backbone weight tag (None: random, for tests).")
        size: int = Field(default=256, ge=64, multiple_of=32, description="Working size.")
        segments: int = Field(default=500, ge=8, description="SLIC superpixels per image.")
        proposals: int = Field(default=100, ge=1, description="Proposals per image (V).")
        neighbours: int = Field(default=5, ge=1, description="Retrieved labelled images per labelled image when collecting filter pairs.")
        seed: int = Field(default=0, description="Seed of the filter.")
        threads: int = Field(default=0, ge=0, description="torch threads (0: torch's default).")

    def run(self) -> Path:
        cfg = self.config
        start = time.time()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.extra_images and not cfg.extra_maps:
            raise ValueError("mijr training: extra_images needs extra_maps (base maps of the unlabelled photos)")
        stems = half_of(index_folder(Path(cfg.images))[0], None if cfg.split == "all" else cfg.split)[: cfg.max_images]
        pool = pool_images(Path(cfg.images), Path(cfg.maps), Path(cfg.masks), stems)
        if cfg.extra_images:
            extra = sorted(index_folder(Path(cfg.extra_images))[0])[: cfg.max_images]
            pool += pool_images(Path(cfg.extra_images), Path(cfg.extra_maps), None, extra)
        log(f"mijr: {len(stems)} labelled ({cfg.split}) + {len(pool) - len(stems)} unlabelled pool images read "
            f"in {time.time() - start:.0f}s")
        refiner = MIJR(backbone=cfg.backbone, backbone_weights=cfg.backbone_weights, size=cfg.size,
                       segments=cfg.segments, proposals=cfg.proposals, neighbours=cfg.neighbours, seed=cfg.seed)
        refiner.fit(pool)
        refiner.pool.card.update({
            "method": "MIJR (Ma et al., IEEE TMM), salplug-mijr reimplementation",
            "data": {"images": cfg.images, "maps": cfg.maps, "masks": cfg.masks, "split": cfg.split,
                     "labelled": len(stems), "extra_images": cfg.extra_images, "extra_maps": cfg.extra_maps},
            "split_rule": "salplug.datasets.half_of: index in sorted stem order, even = 0, 2, 4, ...; odd = 1, 3, 5, ...",
            "command": self.command(),
        })
        refiner.save_index(cfg.out)
        log(f"mijr: done in {time.time() - start:.0f}s, wrote {cfg.out}")
        return Path(cfg.out)
