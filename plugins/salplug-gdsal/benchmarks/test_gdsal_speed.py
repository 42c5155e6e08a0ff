"""gdsal speed (priors issue): a batch of 4 sample photos at 320×320, CPU and, where present, CUDA.

Steps 1-3 (classification and the T-step descent) run batched on the device; the SLIC and
colour-contrast refinement runs per image on the CPU. The raw-map benchmark isolates the
descent. Paper: 0.45 s per image on a TITAN X.
"""

from __future__ import annotations

import pytest
import torch

from salplug.samples import sample_batch
from salplug_gdsal import GradientDescentSaliency

DEVICES = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
BATCH = 4


def _timed(benchmark, device, fn):
    def run():
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    with torch.inference_mode():
        return benchmark.pedantic(run, rounds=3, warmup_rounds=1)


def _report(benchmark, label: str) -> None:
    rate = BATCH / benchmark.stats.stats.min
    benchmark.extra_info["img_per_s"] = round(rate, 2)
    print(f"\n{label}: {rate:.2f} img/s ({1000 / rate:.0f} ms/image)")


@pytest.mark.benchmark(group="gdsal")
@pytest.mark.parametrize("device", DEVICES)
def test_gdsal_full_batch4_320(benchmark, device):
    images = sample_batch(320, BATCH).to(device)
    prior = GradientDescentSaliency().to(device)
    out = _timed(benchmark, device, lambda: prior(images))
    assert out.shape == (BATCH, 1, 320, 320) and torch.isfinite(out).all()
    _report(benchmark, f"gdsal (defaults) {BATCH}×320×320, {device}")


@pytest.mark.benchmark(group="gdsal")
@pytest.mark.parametrize("device", DEVICES)
def test_gdsal_descent_only_batch4_320(benchmark, device):
    images = sample_batch(320, BATCH).to(device)
    prior = GradientDescentSaliency().to(device)
    out = _timed(benchmark, device, lambda: prior.raw_maps(images))
    assert out.shape == (BATCH, 320, 320) and torch.isfinite(out).all()
    _report(benchmark, f"gdsal descent only (T steps) {BATCH}×320×320, {device}")
