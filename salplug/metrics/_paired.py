"""Two methods scored on the same images: their mean per-image difference and a bootstrap interval.

Dataset means of two methods differ by the images' spread as well as by merit. Pairing the
scores image by image removes what the images share, and resampling the images (the
percentile bootstrap) tells how far the mean difference would move on another draw of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from salplug.metrics._evaluation import MethodScores
from salplug.metrics._outputs import LABELS

RESAMPLES = 2000
DRAWS_PER_CHUNK = 1 << 22
"""Resampled indices drawn at once, so memory stays bounded whatever the number of images."""


@dataclass(frozen=True)
class PairedDifference:
    """Mean of A − B over `count` images, and the bootstrap interval [`low`, `high`] at `level`."""

    mean: float
    low: float
    high: float
    count: int
    level: float


def paired_difference(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> PairedDifference:
    """Per-image scores of methods A and B (image key to score) compared on the images both have.

    Images where either score is NaN (an S-measure with an empty quadrant) are left out.
    The interval is the central `level` of the means of `resamples` resamplings of the
    images with replacement, drawn from a generator seeded with `seed`, so it repeats.
    """
    if resamples < 1:
        raise ValueError(f"resamples: expected a positive integer, got {resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level: expected a fraction between 0 and 1, got {level}")
    keys = sorted(k for k in a.keys() & b.keys() if not (math.isnan(a[k]) or math.isnan(b[k])))
    if not keys:
        raise ValueError(f"expected scores of the same images for both methods, got none in common "
                         f"({len(a)} images in A, {len(b)} in B, NaN ones left out)")
    diff = np.array([a[k] - b[k] for k in keys], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, DRAWS_PER_CHUNK // diff.size)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        means[start : start + size] = diff[rng.integers(0, diff.size, (size, diff.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return PairedDifference(float(diff.mean()), float(low), float(high), len(keys), level)


def compare_methods(a: MethodScores, b: MethodScores, *, resamples: int = RESAMPLES,
                    seed: int = 0) -> dict[str, PairedDifference]:
    """`paired_difference` of A − B for each metric whose table score is its per-image mean, for both.

    A score taken from a dataset-averaged curve's maximum (max F, max E) is not the mean of
    the per-image maxima (unless every image peaks at the same threshold), so a paired
    difference of it would not match the table: it is left out.
    """
    return {
        metric: paired_difference(a.per_image[metric], b.per_image[metric], resamples=resamples, seed=seed)
        for metric in a.scores
        if metric in b.scores and _is_per_image_mean(a, metric) and _is_per_image_mean(b, metric)
    }


def _is_per_image_mean(result: MethodScores, metric: str) -> bool:
    values = list(result.per_image.get(metric, {}).values())
    if len(values) != result.count or not values:
        return False
    mean, score = float(np.mean(values)), result.scores[metric]
    return (math.isnan(mean) and math.isnan(score)) or math.isclose(mean, score, rel_tol=1e-9, abs_tol=1e-12)


def format_comparison(a: str, b: str, differences: dict[str, PairedDifference]) -> str:
    """One line per metric: the mean of A − B over the images both scored, and its bootstrap interval."""
    if not differences:
        return f"{a} − {b}: no metric here has per-image scores to compare"
    return "\n".join(
        f"{a} − {b}  {LABELS.get(metric, metric)}: {d.mean:+.4f}, "
        f"{d.level:.0%} interval [{d.low:+.4f}, {d.high:+.4f}] over {d.count} images"
        for metric, d in differences.items()
    )
