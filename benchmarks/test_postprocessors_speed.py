"""Post-processor speed: DenseCRF per image, guided filter batched.

DenseCRF runs pydensecrf's C++ solver image by image on the CPU (10 steps, A2S defaults);
the guided filter is one batched torch computation, on the CPU and, where present, CUDA.
Figures are images per second from the best of the rounds.
"""

from __future__ import annotations

import pytest
import torch

import salplug
from salplug.testing import DEVICES, measure
from salplug.data import sample_batch


@pytest.mark.benchmark(group="densecrf")
def test_densecrf_per_image_320(benchmark):
    images = sample_batch(320, 1)
    maps = salplug.build("prior", "center")(images)
    crf = salplug.build("postprocessor", "densecrf")
    out = measure(benchmark, lambda: crf(images, maps), count=1, label="densecrf 320×320", rounds=10)
    assert out.shape == maps.shape and torch.isfinite(out).all()


@pytest.mark.benchmark(group="guided")
@pytest.mark.parametrize("guide", ["gray", "color"])
@pytest.mark.parametrize("device", DEVICES)
def test_guided_batched_320(benchmark, guide, device):
    images = sample_batch(320, 16).to(device)
    maps = salplug.build("prior", "center")(images).to(device)
    guided = salplug.build("postprocessor", "guided", guide=guide).to(device)
    out = measure(benchmark, lambda: guided(images, maps), count=16, label=f"guided ({guide} guide) 16×320×320",
                  device=device, rounds=10, warmup_rounds=2)
    assert out.shape == maps.shape and torch.isfinite(out).all()
