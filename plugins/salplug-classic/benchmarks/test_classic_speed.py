"""Classical prior speed: a batch of 8 sample photos at 320×320 per prior, CPU.

Figures are images per second from the best of the rounds, in ``benchmark.extra_info``.
"""

from __future__ import annotations

import pytest
import torch

import salplug
from salplug.testing import measure
from salplug.data import sample_batch

PRIORS = ("spectral-residual", "frequency-tuned", "mbd", "mbd-plus")
BATCH = 8


@pytest.mark.benchmark(group="classic-priors")
@pytest.mark.parametrize("name", PRIORS)
def test_classic_prior_batch8_320(benchmark, name):
    images = sample_batch(320, BATCH)
    prior = salplug.build("prior", name)
    out = measure(benchmark, lambda: prior(images), count=BATCH, label=f"{name} {BATCH}×320×320", rounds=5)
    assert out.shape == (BATCH, 1, 320, 320) and torch.isfinite(out).all()
