"""LDPS refiner speed: a batch of 16 photos at 256×256, checkpoint mode, on the CPU and, where present, CUDA.

Figures are images per second from the best of the rounds, in ``benchmark.extra_info``.
"""

from __future__ import annotations

import pytest
import torch

import salplug
from salplug.testing import DEVICES, measure
from salplug.data import sample_batch
from salplug_ldps import LDPS


@pytest.mark.benchmark(group="ldps")
@pytest.mark.parametrize("device", DEVICES)
def test_ldps_refine_batch16_256(benchmark, device):
    images = sample_batch(256, 16).to(device)
    maps = salplug.build("prior", "center")(images).to(device)
    checkpoint = "shipped"
    refiner = LDPS(checkpoint=checkpoint).to(device)
    out = measure(benchmark, lambda: refiner(images, maps), count=16, device=device,
                  label="ldps checkpoint mode 16×256×256")
    assert out.shape == maps.shape and torch.isfinite(out).all()


@pytest.mark.benchmark(group="ldps-training")
@pytest.mark.parametrize("device", DEVICES)
def test_ldps_training_step_batch8_256(benchmark, device):
    """One SGD step of the trainer at its defaults (batch 8, 256×256, encoder blocks 3-6 and head)."""
    from salplug_ldps.train import optimiser, train_step

    images = sample_batch(256, 8).to(device)
    priors = salplug.build("prior", "center")(images)
    refiner = LDPS(checkpoint=None).to(device)
    refiner.net.train()
    optim = optimiser(refiner.net, 5e-4, 10.0)
    loss = measure(benchmark, lambda: train_step(refiner, optim, images, priors), count=8, device=device,
                   label="ldps training step, batch 8 at 256", unit="sample", inference=False)
    assert loss >= 0


@pytest.mark.benchmark(group="ldps-bf16")
@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 large batches are the GPU figure (LDPS issue: ≥ 1000 img/s on an H200)")
@pytest.mark.parametrize("batch", [64, 256])
def test_ldps_refine_bf16_cuda(benchmark, batch):
    images = sample_batch(256, batch).cuda()
    maps = salplug.build("prior", "center")(images)
    checkpoint = "shipped"
    refiner = LDPS(checkpoint=checkpoint).cuda()

    def call():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return refiner(images, maps)

    out = measure(benchmark, call, count=batch, device="cuda", label=f"ldps checkpoint mode bf16 {batch}×256×256")
    assert out.shape == maps.shape and torch.isfinite(out).all()
    with torch.inference_mode():
        gap = float((out - refiner(images, maps)).abs().mean())
    benchmark.extra_info["mean_abs_gap_to_fp32"] = round(gap, 5)
    print(f"bf16 against fp32: mean absolute difference {gap:.5f}")
    benchmark.extra_info["checkpoint"] = checkpoint


@pytest.mark.benchmark(group="ldps")
def test_densecrf_per_image_sod_size(benchmark):
    """What LDPS is set against (LDPS issue: at least 3× faster): DenseCRF on one SOD-sized photo (321×481), CPU."""
    images = torch.nn.functional.interpolate(sample_batch(256, 1), size=(321, 481), mode="bilinear",
                                             align_corners=False).clamp(0, 1)
    maps = salplug.build("prior", "center")(images)
    crf = salplug.build("postprocessor", "densecrf")
    out = measure(benchmark, lambda: crf(images, maps), count=1, label="densecrf 321×481", rounds=5)
    assert out.shape == maps.shape and torch.isfinite(out).all()
