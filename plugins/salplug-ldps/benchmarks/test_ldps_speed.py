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


@pytest.mark.benchmark(group="ldps-training")
def test_ldps_training_steps_batch8_256(benchmark):
    """The trainer's SGD steps at its defaults (batch 8, 256×256, encoder blocks 3-6 and head), CPU."""
    from salplug_ldps.train import Pairs, train

    images = sample_batch(256, 8)
    priors = salplug.build("prior", "center")(images)
    pairs = Pairs((images * 255).round().to(torch.uint8), (priors * 255).round().to(torch.uint8), ["samples"])
    refiner = LDPS(checkpoint=None)
    figures = measure(benchmark, lambda: train(refiner, pairs, steps=3, log=lambda *_: None), count=24,
                      label="ldps training, 3 steps of 8 at 256", unit="sample", inference=False)
    assert figures["steps"] == 3
