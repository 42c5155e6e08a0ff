"""LPS refiner speed: a batch of 16 photos at 256×256 from the center prior, on the CPU and, where present, CUDA.

Figures are images per second from the best of the rounds, in ``benchmark.extra_info``.
"""

from __future__ import annotations

import pytest
import torch

import salplug
from salplug.samples import sample_batch
from salplug_lps import LPS
from salplug_lps.refiner import shipped_checkpoint

DEVICES = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


@pytest.mark.benchmark(group="lps")
@pytest.mark.parametrize("iterations", [1, 3])
@pytest.mark.parametrize("device", DEVICES)
def test_lps_refine_batch16_256(benchmark, device, iterations):
    images = sample_batch(256, 16).to(device)
    maps = salplug.build("prior", "center")(images).to(device)
    checkpoint = "shipped" if shipped_checkpoint().exists() else None
    refiner = LPS(checkpoint=checkpoint, iterations=iterations).to(device)

    def run():
        out = refiner(images, maps)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    with torch.inference_mode():
        out = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    assert out.shape == maps.shape and torch.isfinite(out).all()
    rate = 16 / benchmark.stats.stats.min
    benchmark.extra_info["img_per_s"] = round(rate, 2)
    benchmark.extra_info["device"] = device
    benchmark.extra_info["iterations"] = iterations
    benchmark.extra_info["checkpoint"] = checkpoint or "none (untrained: speed only)"
    print(f"\nlps T={iterations} 16×256×256, {device}: {rate:.1f} img/s ({1000 / rate:.1f} ms/image)")
