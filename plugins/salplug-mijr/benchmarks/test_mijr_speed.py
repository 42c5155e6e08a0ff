"""MIJR speed: refining the four sample photos at the default settings (256 px, 500 superpixels, 100 proposals,
5 retrieved images) against a pool of eight (the samples and their mirror images, centre-prior maps and
masks: speed only), and against the fitted DUTS-TR pool where one exists (`SALPLUG_MIJR_POOL`, default
runs/mijr/pool.pt: retrieval then searches thousands of descriptors). Figures are images per second from
the best round, in ``benchmark.extra_info``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from salplug_mijr import MIJR, PoolImage

import salplug
from salplug.testing import measure
from salplug.data import sample_batch


@pytest.fixture(scope="module")
def refiner() -> MIJR:
    images = sample_batch(256, 4)
    maps = salplug.build("prior", "center")(images)
    pool = []
    for i, (image, prior) in enumerate(zip(images, maps)):
        for flip in (False, True):
            rgb = image.permute(1, 2, 0).numpy()
            m = prior[0].numpy()
            if flip:
                rgb, m = rgb[:, ::-1].copy(), m[:, ::-1].copy()
            pool.append(PoolImage(f"{i}{'f' if flip else ''}", rgb, m, m > 0.5))
    return MIJR().fit(pool)


@pytest.mark.benchmark(group="mijr")
def test_mijr_refine_4_photos_256(benchmark, refiner):
    images = sample_batch(256, 4)
    maps = salplug.build("prior", "center")(images)
    out = measure(benchmark, lambda: refiner(images, maps), count=4, label="mijr 4×256×256 (pool of 8)", rounds=2)
    assert out.shape == maps.shape and torch.isfinite(out).all()
    assert np.isfinite(refiner.pool.card["fit_seconds"])


@pytest.mark.benchmark(group="mijr")
def test_mijr_refine_4_photos_256_fitted_pool(benchmark):
    path = Path(os.environ.get("SALPLUG_MIJR_POOL", "runs/mijr/pool.pt"))
    if not path.exists():
        pytest.skip(f"no fitted pool at {path} (build it with salplug train mijr, README of salplug-mijr; "
                    "or point SALPLUG_MIJR_POOL at one)")
    refiner = MIJR(index=str(path))
    images = sample_batch(256, 4)
    maps = salplug.build("prior", "center")(images)
    label = f"mijr 4×256×256 (pool of {refiner.pool.card['pool']})"
    out = measure(benchmark, lambda: refiner(images, maps), count=4, label=label, rounds=2)
    assert out.shape == maps.shape and torch.isfinite(out).all()
