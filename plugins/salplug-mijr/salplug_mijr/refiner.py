"""The ``mijr`` refiner: fitted on a pool of images, it re-learns each target's map from similar pool images."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from salplug.components import ComponentConfig, Refiner, seeded, stored_fields
from salplug.errors import CheckpointError
from salplug.data import square
from salplug.ops import to_hwc
from salplug.train import log

from .alignment import align, aligned_instances, pair_features
from .analysis import Record, analyse
from .features import Encoder
from .filter import HARD, PairFilter, region_iou, table_one
from .pool import Pool, PoolImage, Projection
from .pseudo import AGGRESSIVE, CONSERVATIVE, IGNORED
from .relearn import relearn, spatial_weighting
from .retrieval import describe, nearest

ANALYSIS: dict[str, Any] = {
    "size": 256,
    "segments": 500,
    "compactness": 10.0,
    "proposals": 100,
    "backbone": "mobilenetv2_100",
    "dims": 128,
    "aggressive": AGGRESSIVE,
    "conservative": CONSERVATIVE,
}
"""Fields that shape the pool: a field left at None takes the fitted pool's value, else this default."""


class MIJR(Refiner):
    """MIJR (Ma et al., IEEE TMM): multiple-instance joint re-learning from similar, well-detected images.

    `fit(pool)` analyses pool images (with base maps; masks where given train the pair filter)
    and `save_index(path)` keeps the result; `index: PATH` loads it. Each target then retrieves
    its nearest pool images, aligns with them, keeps the pairs the filter trusts, and re-learns
    its superpixels' saliency with boosted classifiers.
    """

    name = "mijr"
    example_config = {"backbone_weights": None, "size": 64, "segments": 40, "proposals": 12, "neighbours": 3, "filter_epochs": 50}
    device_bound = "cpu"

    class Config(ComponentConfig):
        index: str | None = Field(default=None, description="Fitted pool file (salplug train mijr); None: call fit() first.")
        size: int | None = Field(default=None, ge=64, multiple_of=32, description="Working size (square); None: the pool's, else 256.")
        segments: int | None = Field(default=None, ge=8, description="SLIC superpixels per image; None: the pool's, else 500 (paper).")
        compactness: float | None = Field(default=None, gt=0, description="SLIC compactness; None: the pool's, else 10.")
        proposals: int | None = Field(default=None, ge=1, description="Proposals kept per image (V); None: the pool's, else 100 (paper).")
        backbone: str | None = Field(default=None, description="Registry backbone of the instance features; None: the pool's, else mobilenetv2_100.")
        dims: int | None = Field(default=None, ge=1, description="PCA dimensions of an instance feature; None: the pool's, else 128.")
        aggressive: tuple[float, float, float] | None = Field(default=None, description="θα, θβ, θγ of the aggressive CRF; None: the pool's, else (5, 1, 2).")
        conservative: tuple[float, float, float] | None = Field(default=None, description="θα, θβ, θγ of the conservative CRF; None: the pool's, else (200, 50, 20).")
        backbone_weights: str | None = Field(default="imagenet", description="Backbone weight tag (None: random, for tests); "
                                             "with a fitted pool, the pool's unless given, and a given tag must match it.")
        neighbours: int = Field(default=5, ge=1, description="Retrieved pool images per target, one classifier each (M, paper: 5).")
        top_k: int = Field(default=10, ge=1, description="First K of the alternating top-K proposal assignment (Eq. 1; paper: 10).")
        step: int = Field(default=4, ge=2, multiple_of=2, description="Grid step (px) of the dense SIFT correspondences.")
        displacement: float = Field(default=0.5, ge=0, description="Weight of the small-displacement term of the matching.")
        match_sigma: float = Field(default=0.5, gt=0, description="σ of exp(−cost/σ), a correspondence's weight in Eq. 2.")
        filter_threshold: float = Field(default=0.5, ge=0, le=1, description="Pairs whose filter probability is at least this are kept.")
        hard_weight: float = Field(default=2.0, ge=1, description="Loss weight of hard-target pairs when fitting the filter.")
        filter_epochs: int = Field(default=300, ge=1, description="Full-batch Adam epochs of the filter.")
        l2: float = Field(default=1.0, ge=0, description="L2 strength of the re-learned logistic classifiers.")
        sigma_xy: float = Field(default=0.1, gt=0, description="Spatial σ of the superpixel weighting, as a share of the side.")
        sigma_lab: float = Field(default=10.0, gt=0, description="Colour σ (CIE-Lab) of the superpixel weighting.")
        pool_labels: Literal["pseudo", "masks"] = Field(
            default="pseudo", description="Labels of retrieved instances: their pseudo GT (paper) or true masks (an upper bound).")
        fit_on: Literal["target+retrieved", "retrieved"] = Field(
            default="target+retrieved", description="What each re-learned classifier is fitted on: the target's pseudo-labelled "
            "superpixels and the retrieved image's kept instances, or the latter alone (the target's labels only weigh it, Eq. 7).")
        blend: float = Field(default=0.5, ge=0, le=1, description="Share of the re-learned map in the output (the rest: the base map).")
        seed: int = Field(default=0, description="Seed of the filter's training and of a random (untagged) backbone.")

    def __init__(self, config=None, **options: Any):
        super().__init__(config, **options)
        self.pool: Pool | None = Pool.load(self.config.index) if self.config.index else None
        stored = self.pool.analysis if self.pool else {}
        self.analysis = self._analysis(stored)
        self.config = self.config.model_copy(update={**self.analysis, "backbone_weights": self._backbone_weights(stored)})
        with seeded(self.config.seed):  # a random backbone (weights None) is the same on every build
            self.encoder = Encoder(self.analysis["backbone"], self.config.backbone_weights)
        self.eval()

    def _analysis(self, stored: dict[str, Any]) -> dict[str, Any]:
        """Pool-shaping fields: given, else the pool's (its lists read back as tuples), else ANALYSIS."""
        fitted = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()}
        return stored_fields(
            self.config, ANALYSIS, fitted, shaped=ANALYSIS,
            clash=lambda field, kept, given: f"refiner 'mijr': pool {self.config.index} was fitted with "
            f"{field}={kept!r}, got {field}={given!r}; leave {field} unset to follow the pool",
        )

    def _backbone_weights(self, stored: dict[str, Any]) -> str | None:
        """The pool's weight tag (pools before it was recorded: the config's); a tag given explicitly must match it.

        Pool and targets must share one feature space: a pool fitted on a detector's features
        and targets described by an untrained one would be compared meaninglessly, without error.
        """
        given = self.config.backbone_weights
        if "backbone_weights" not in stored:
            return given
        kept = stored["backbone_weights"]
        if "backbone_weights" in self.config.model_fields_set and given != kept:
            raise CheckpointError(f"refiner 'mijr': pool {self.config.index} was fitted with backbone_weights={kept!r}, "
                                  f"got backbone_weights={given!r}; leave backbone_weights unset to follow the pool")
        return kept

    def _records(self, keys: Sequence[str], images: Sequence[np.ndarray], maps: Sequence[np.ndarray],
                 masks: Sequence[np.ndarray | None]) -> list[Record]:
        """Analyse images (raw features); the backbone runs once per batch of 8."""
        a = self.analysis
        size = a["size"]
        out = []
        for s in range(0, len(images), 8):
            small = [np.clip(square(np.asarray(im, np.float32), size), 0, 1) for im in images[s : s + 8]]
            batch = torch.from_numpy(np.stack(small)).permute(0, 3, 1, 2).to(self.device_of_encoder())
            fmaps = self.encoder(batch).cpu()
            for i, image in enumerate(small):
                out.append(analyse(keys[s + i], image, maps[s + i], masks[s + i], fmaps[i], size=size,
                                   segments=a["segments"], compactness=a["compactness"], proposals=a["proposals"],
                                   aggressive=a["aggressive"], conservative=a["conservative"]))
        return out

    def device_of_encoder(self) -> torch.device:
        return next(self.encoder.parameters()).device

    def _align(self, target: Record, other: Record):
        c = self.config
        return align(target, other, step=c.step, lam=c.displacement, sigma=c.match_sigma, top_k=c.top_k)

    def fit(self, pool: Iterable[PoolImage]) -> MIJR:
        """Analyse the pool, fit the feature projection and train the pair filter on its labelled images."""
        items = list(pool)
        if not items:
            raise ValueError("refiner 'mijr': fit expected pool images, got none")
        start = time.time()
        records = self.analyse_pool(items)
        log(f"mijr: analysed {len(records)} pool images in {time.time() - start:.0f}s")
        projection = self.fit_projection(records)
        records = [projection.project(r) for r in records]
        descriptors = describe([r.gray for r in records])
        examples = [self.pair_examples(records[t], records[n])
                    for t, neighbours in self.filter_neighbours(records, descriptors) for n in neighbours]
        return self.fit_filter(records, descriptors, projection, examples, seconds=time.time() - start)

    def analyse_pool(self, items: Sequence[PoolImage]) -> list[Record]:
        """Pool images analysed, features still raw (unprojected)."""
        return self._records([p.key for p in items], [p.image for p in items], [p.saliency for p in items],
                             [p.mask for p in items])

    def fit_projection(self, records: Sequence[Record]) -> Projection:
        """PCA to `dims` of the raw superpixel and proposal instances of `records`."""
        sample = torch.cat([torch.cat([r.features, r.proposal_features]) for r in records])
        return Projection.fit(sample, self.analysis["dims"])

    def filter_neighbours(self, records: Sequence[Record], descriptors: Tensor,
                          targets: Sequence[int] | None = None) -> list[tuple[int, list[int]]]:
        """(labelled pool image, its nearest other labelled pool images): the pairs aligned to train the filter.

        `targets` (indices of labelled records) limits the images whose pairs are collected; their
        neighbours still come from every labelled image.
        """
        labelled = [i for i, r in enumerate(records) if r.inter is not None]
        if len(labelled) < 2:
            raise ValueError(f"refiner 'mijr': the pair filter needs masks for at least 2 pool images, got {len(labelled)}")
        rows = list(range(len(labelled))) if targets is None else [labelled.index(t) for t in targets]
        found = nearest(descriptors[[labelled[r] for r in rows]], descriptors[labelled], self.config.neighbours, exclude=rows)
        return [(labelled[r], [labelled[n] for n in near]) for r, near in zip(rows, found.tolist())]

    def pair_examples(self, target: Record, other: Record) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The filter's training rows from aligning two labelled pool images: features, Table I label, weight, hard target."""
        al = self._align(target, other)
        iou_t = region_iou(target.regions.members[al.pairs[:, 0]], target.inter, target.union)
        iou_a = region_iou(other.regions.members[al.pairs[:, 1]], other.inter, other.union)
        y, w = table_one(iou_t, iou_a, self.config.hard_weight)
        return pair_features(target, other, al), torch.from_numpy(y), torch.from_numpy(w), torch.from_numpy(iou_t <= HARD)

    def fit_filter(self, records: list[Record], descriptors: Tensor, projection: Projection,
                   examples: Sequence[tuple[Tensor, Tensor, Tensor, Tensor]], seconds: float) -> MIJR:
        """Train the pair filter on `examples` (from `pair_examples`) and keep the fitted pool."""
        c = self.config
        x, label, weight, hard = (torch.cat(part) for part in zip(*examples))
        pair_filter = PairFilter(x.shape[1])
        losses = pair_filter.fit(x, label, weight, epochs=c.filter_epochs, seed=c.seed)
        used = weight > 0
        with torch.no_grad():
            accuracy = float(((pair_filter(x[used]) >= 0.5).float() == label[used]).float().mean())
        card = {
            "pool": len(records), "labelled": sum(r.inter is not None for r in records),
            "filter_pairs": int(used.sum()),
            "filter_positive_share": round(float(label[used].mean()), 4),
            "filter_hard_share": round(float(hard[used].float().mean()), 4),
            "filter_loss": [round(losses[0], 4), round(losses[-1], 4)], "filter_train_accuracy": round(accuracy, 4),
            "fit_seconds": round(seconds, 1),
        }
        analysis = {**self.analysis, "backbone_weights": self.config.backbone_weights}
        self.pool = Pool(records, descriptors, projection, pair_filter, analysis, card)
        log(f"mijr: filter on {card['filter_pairs']} labelled pairs ({card['filter_positive_share']:.0%} helpful), "
            f"train accuracy {accuracy:.3f}")
        return self

    def save_index(self, path: str | Path) -> Path:
        """Write the fitted pool so `MIJR(index=path)` reuses it."""
        if self.pool is None:
            raise CheckpointError("refiner 'mijr': save_index expected a fitted pool, got none (call fit first)")
        return self.pool.save(path)

    def analyse_targets(self, images: Sequence[np.ndarray], maps: Sequence[np.ndarray]) -> list[Record]:
        """Targets (H×W×3 images in [0, 1], H×W base maps) analysed and projected with the fitted pool's projection."""
        records = self._records([str(i) for i in range(len(images))], images, maps, [None] * len(images))
        return [self.pool.projection.project(r) for r in records]

    def retrieved_instances(self, target: Record) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Per retrieved pool image, its instances aligned with the target in pairs the filter keeps:
        (features, pseudo label, area), as the re-learning takes them."""
        c, pool = self.config, self.pool
        chosen = nearest(describe([target.gray]), pool.descriptors, c.neighbours)[0]
        out = []
        for n in chosen.tolist():
            other = pool.records[n]
            al = self._align(target, other)
            if len(al.pairs) == 0:
                continue
            with torch.no_grad():
                keep = (pool.filter(pair_features(target, other, al)) >= c.filter_threshold).numpy()
            labels = other.pgt if c.pool_labels == "pseudo" else other.true_labels()
            j = aligned_instances(labels, al, keep)
            out.append((other.features[j].double(), torch.from_numpy(labels[j] == 1).double(),
                        torch.from_numpy(other.regions.area[j]).double()))
        return out

    def relearned_scores(self, target: Record, retrieved: list[tuple[Tensor, Tensor, Tensor]],
                         fit_on: str | None = None) -> np.ndarray | None:
        """Eq. 6-8 re-learned score per target superpixel, before the spatial weighting; None when nothing could be learned.

        fit_on: the config's `fit_on` unless given."""
        confident = torch.from_numpy(target.pgt != IGNORED)
        with_target = (fit_on or self.config.fit_on) == "target+retrieved"
        score, _ = relearn(target.features.double(), confident, torch.from_numpy(target.pgt == 1).double(),
                           torch.from_numpy(target.regions.area).double(), retrieved, self.config.l2, with_target)
        score = score.numpy()
        return None if np.isnan(score).any() else score

    def spatial_map(self, target: Record, score: np.ndarray) -> np.ndarray:
        """Superpixel scores after the spatial weighting, painted at the working size (S×S)."""
        reg = target.regions
        side = reg.labels.shape[0]
        return spatial_weighting(score, reg.centroid, reg.lab, self.config.sigma_xy * side, self.config.sigma_lab)[reg.labels]

    def refine_record(self, target: Record) -> np.ndarray | None:
        """Re-learned saliency (S×S) of one analysed, projected target; None when nothing could be learned."""
        score = self.relearned_scores(target, self.retrieved_instances(target))
        return None if score is None else self.spatial_map(target, score)

    def fuse(self, base: np.ndarray, learned: np.ndarray | None) -> np.ndarray:
        """The output map: `blend` of the re-learned map (full size) over the base map; the base map when nothing was learned."""
        if learned is None:
            return base
        return np.clip((1 - self.config.blend) * base + self.config.blend * learned, 0, 1)

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        if self.pool is None:
            raise CheckpointError("refiner 'mijr': expected a fitted pool (index: PATH from salplug train mijr, "
                                  "or MIJR.fit(pool) in Python), got none")
        height, width = image.shape[-2:]
        images = to_hwc(image)
        maps = saliency.detach().float().clamp(0, 1)[:, 0].cpu().numpy()
        out = []
        for record, prior in zip(self.analyse_targets(images, maps), maps):
            learned = self.refine_record(record)
            full = None if learned is None else cv2.resize(learned.astype(np.float32), (width, height),
                                                           interpolation=cv2.INTER_LINEAR)
            out.append(self.fuse(prior, full))
        return torch.from_numpy(np.stack(out))[:, None].to(saliency.device, saliency.dtype)
