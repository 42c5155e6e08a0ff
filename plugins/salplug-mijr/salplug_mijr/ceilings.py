"""How far each piece of MIJR can carry a detector's map, measured on held-out images with their masks.

The refiner's output is a blend of the base map and a map re-learned over superpixels. This
module scores that re-learned map next to what it is built from and what bounds it: the base
map averaged per superpixel (what any superpixel map loses), re-learning from the target
alone or from the retrieved pool instances alone, and two classifiers given the true labels:
one fitted on the target itself (can the features separate the object at all?) and one fitted
on the other targets, k-fold (do the features carry saliency from image to image, which the
re-learning needs?). Each source is scored alone and blended with the base map as the refiner
blends it. Run it with a pool that holds none of the dataset's images (or, with `--subset`,
score the images a pool fitted on the others never saw); `--set pool_labels=masks` gives the retrieved instances their
true labels (an upper bound on what better pseudo GT could do):

    salplug mijr ceilings --dataset DIR --prior NAME --index POOL [--subset FILE] [--set blend=0.25]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from salplug.pipeline import parse_settings
from salplug.data import SODDataset, index_folder, read_image, read_map, read_subset, square
from salplug.host import Command
from salplug.metrics import Scorer, read_uint8

from .analysis import Record
from .refiner import MIJR
from .relearn import balanced, fit_logistic, predict

SOURCES = ("mijr (Eq. 6-8)", "target only", "retrieved only", "base map per superpixel",
           "true labels, same image", "true labels, other images")
"""Re-learned or bounding maps, each scored alone and blended with the base map."""


@dataclass
class Target:
    """One held-out image: its base map and mask at full size, and its analysis at the working size."""

    base: np.ndarray
    mask: np.ndarray  # uint8, as the metrics read it
    record: Record
    truth: np.ndarray  # per superpixel: 1 when most of it is inside the mask
    scores: dict[str, np.ndarray | None] = field(default_factory=dict)


def logistic(x: torch.Tensor, y: np.ndarray, area: np.ndarray, l2: float) -> tuple | None:
    """The re-learning's classifier (class-balanced, area-weighted logistic); None without both classes."""
    if y.min() == y.max():
        return None
    y_t, w = torch.from_numpy(y.astype(np.float64)), torch.from_numpy(area.astype(np.float64))
    return fit_logistic(x.double(), y_t, balanced(y_t, w), l2)


def target_scores(refiner: MIJR, target: Target) -> None:
    """Fill every per-image source of `target` (the cross-image one needs all targets: see `cross_image`)."""
    rec, l2 = target.record, refiner.config.l2
    retrieved = refiner.retrieved_instances(rec)
    s = target.scores
    s["mijr (Eq. 6-8)"] = refiner.relearned_scores(rec, retrieved)
    s["target only"] = refiner.relearned_scores(rec, [], fit_on="target+retrieved")
    s["base map per superpixel"] = rec.base
    x = rec.features.double()
    pooled = logistic(torch.cat([r[0] for r in retrieved]), torch.cat([r[1] for r in retrieved]).numpy(),
                      torch.cat([r[2] for r in retrieved]).numpy(), l2) if retrieved else None
    s["retrieved only"] = None if pooled is None else predict(pooled, x).numpy()
    own = logistic(x, target.truth, rec.regions.area, l2)
    s["true labels, same image"] = None if own is None else predict(own, x).numpy()


def cross_image(targets: Sequence[Target], folds: int, l2: float) -> None:
    """True-label classifier per fold of targets, fitted on the others' superpixels."""
    fold = np.arange(len(targets)) % folds
    for f in range(folds):
        train = [t for t, k in zip(targets, fold) if k != f]
        model = logistic(torch.cat([t.record.features for t in train]), np.concatenate([t.truth for t in train]),
                         np.concatenate([t.record.regions.area for t in train]), l2)
        for t, k in zip(targets, fold):
            if k == f:
                t.scores["true labels, other images"] = None if model is None else predict(model, t.record.features.double()).numpy()


def painted(refiner: MIJR, target: Target, source: str) -> np.ndarray | None:
    """The source's map at full size; re-learned scores get the refiner's spatial weighting, the base map per superpixel none."""
    score = target.scores[source]
    if score is None:
        return None
    rec = target.record
    small = score[rec.regions.labels] if source == "base map per superpixel" else refiner.spatial_map(rec, score)
    height, width = target.base.shape
    return cv2.resize(small.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def load_targets(refiner: MIJR, dataset: SODDataset, prior_folder: Path, limit: int | None) -> list[Target]:
    """The dataset's images (of its subset, the first `limit`) with their prior maps and masks."""
    maps, _ = index_folder(prior_folder)
    out = []
    for key in dataset.keys[:limit]:
        image, base = read_image(dataset.images[key]), read_map(maps[key])
        out.append(make_target(refiner, image, base, read_uint8(dataset.masks[key])))
    return out


def make_target(refiner: MIJR, image: np.ndarray, base: np.ndarray, mask: np.ndarray) -> Target:
    """Analyse one held-out image (H×W×3 in [0, 1], H×W base map, H×W uint8 mask)."""
    rec = refiner.analyse_targets([image], [base])[0]
    reg = rec.regions
    inside = square((mask > 127).astype(np.float32), reg.labels.shape[0]) > 0.5  # as `analyse` reads a pool mask
    rec.truth = np.bincount(reg.labels.ravel(), inside.ravel(), reg.count)
    return Target(base, mask, rec, rec.true_labels().astype(np.float64))


def score(refiner: MIJR, targets: Iterable[Target], metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """Scores per row: the base map, then each source alone and blended (a missing source falls back to the base map)."""
    rows = {"base map": Scorer("base map", metrics)}
    for source in SOURCES:
        rows[source] = Scorer(source, metrics)
        rows[f"base + {source}"] = Scorer(f"base + {source}", metrics)
    fallbacks = dict.fromkeys(SOURCES, 0)

    def add(name: str, out: np.ndarray, mask: np.ndarray) -> None:
        as_uint8 = np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)
        rows[name].add(torch.from_numpy(as_uint8)[None, None], torch.from_numpy(mask)[None, None])

    for t in targets:
        add("base map", t.base, t.mask)
        for source in SOURCES:
            learned = painted(refiner, t, source)
            fallbacks[source] += learned is None
            add(source, t.base if learned is None else learned, t.mask)
            add(f"base + {source}", refiner.fuse(t.base, learned), t.mask)
    out = {name: scorer.finish().scores for name, scorer in rows.items()}
    for source, count in fallbacks.items():
        out[source]["fallbacks"] = out[f"base + {source}"]["fallbacks"] = count
    return out


def ceilings(refiner: MIJR, targets: list[Target], folds: int = 5,
             metrics: Sequence[str] = ("mae", "fmeasure")) -> dict[str, dict[str, float]]:
    """Every source for every target, then the scores of each row (see `score`)."""
    for t in targets:
        target_scores(refiner, t)
    cross_image(targets, min(folds, len(targets)), refiner.config.l2)
    return score(refiner, targets, metrics)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, type=Path)
    parser.add_argument("--prior", required=True, help="prior folder name under DATASET/priors")
    parser.add_argument("--subset", metavar="FILE",
                        help="score only the image stems FILE lists, one per line (images the pool never saw); "
                             "default: every image")
    parser.add_argument("--index", required=True, help="fitted pool file (salplug train mijr)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--set", dest="settings", nargs="+", action="extend", default=[], metavar="FIELD=VALUE",
                        help="refiner config field (VALUE read as YAML), e.g. blend=0.25")


def run(args: argparse.Namespace) -> None:
    refiner = MIJR(index=args.index, **parse_settings(args.settings, "FIELD=VALUE"))
    dataset = SODDataset(args.dataset, read_subset(args.subset) if args.subset else None)
    with torch.no_grad():
        targets = load_targets(refiner, dataset, dataset.prior_folder(args.prior), args.limit)
        rows = ceilings(refiner, targets, args.folds)
    print(f"prior {args.prior}, {len(targets)} held-out images ({args.subset or 'all'}), pool {args.index}, "
          f"pool labels {refiner.config.pool_labels}")
    print(f"{'source':42s} {'MAE':>7s} {'maxF':>7s} {'meanF':>7s} {'fallbacks':>9s}")
    for name, s in rows.items():
        print(f"{name:42s} {s['mae']:7.4f} {s['max_f']:7.4f} {s['mean_f']:7.4f} {s.get('fallbacks', 0):9d}")


COMMAND = Command("ceilings", "score how far each piece of MIJR carries a detector's map, on images with masks",
                  add_arguments, run)
