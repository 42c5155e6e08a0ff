"""gdsal speed: a batch of 4 sample photos at 320×320, CPU and, where present, CUDA.

Steps 1-3 (classification and the T-step descent) run batched on the device; the SLIC and
colour-contrast refinement runs per image on the CPU. The raw-map benchmark isolates the
descent. Paper: 0.45 s per image on a TITAN X.
"""

from __future__ import annotations

import pytest
import torch

from salplug.testing import DEVICES, measure
from salplug.data import sample_batch
from salplug_gdsal import GradientDescentSaliency

BATCH = 4


@pytest.mark.benchmark(group="gdsal")
@pytest.mark.parametrize("device", DEVICES)
def test_gdsal_full_batch4_320(benchmark, device):
    images = sample_batch(320, BATCH).to(device)
    prior = GradientDescentSaliency().to(device)
    out = measure(benchmark, lambda: prior(images), count=BATCH, device=device, label=f"gdsal (defaults) {BATCH}×320×320")
    assert out.shape == (BATCH, 1, 320, 320) and torch.isfinite(out).all()


@pytest.mark.benchmark(group="gdsal")
@pytest.mark.parametrize("device", DEVICES)
def test_gdsal_descent_only_batch4_320(benchmark, device):
    images = sample_batch(320, BATCH).to(device)
    prior = GradientDescentSaliency().to(device)
    out = measure(benchmark, lambda: prior.raw_maps(images), count=BATCH, device=device,
                  label=f"gdsal descent only (T steps) {BATCH}×320×320")
    assert out.shape == (BATCH, 320, 320) and torch.isfinite(out).all()
