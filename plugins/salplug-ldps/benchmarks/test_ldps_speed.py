"""LDPS refiner speed: a batch of 16 photos at 256×256, checkpoint mode, on the CPU and, where present, CUDA.

Figures are images per second from the best of the rounds, in ``benchmark.extra_info``.
"""

from __future__ import annotations

import pytest
import torch

import salplug
from salplug.benchmarking import DEVICES, measure
from salplug.samples import sample_batch
from salplug_ldps import LDPS
from salplug_ldps.refiner import shipped_checkpoint


@pytest.mark.benchmark(group="ldps")
@pytest.mark.parametrize("device", DEVICES)
def test_ldps_refine_batch16_256(benchmark, device):
    images = sample_batch(256, 16).to(device)
    maps = salplug.build("prior", "center")(images).to(device)
    checkpoint = "shipped" if shipped_checkpoint().exists() else None
    refiner = LDPS(checkpoint=checkpoint).to(device)
    out = measure(benchmark, lambda: refiner(images, maps), count=16, device=device,
                  label="ldps checkpoint mode 16×256×256")
    assert out.shape == maps.shape and torch.isfinite(out).all()
