"""LPS refiner speed: a batch of 16 photos at 256×256 from the center prior, on the CPU and, where present, CUDA.

Figures are images per second from the best of the rounds, in ``benchmark.extra_info``.
"""

from __future__ import annotations

import pytest
import torch

import salplug
from salplug.testing import DEVICES, measure
from salplug.data import sample_batch
from salplug_lps import LPS


@pytest.mark.benchmark(group="lps")
@pytest.mark.parametrize("iterations", [1, 3])
@pytest.mark.parametrize("device", DEVICES)
def test_lps_refine_batch16_256(benchmark, device, iterations):
    images = sample_batch(256, 16).to(device)
    maps = salplug.build("prior", "center")(images).to(device)
    checkpoint = "shipped"
    refiner = LPS(checkpoint=checkpoint, iterations=iterations).to(device)
    out = measure(benchmark, lambda: refiner(images, maps), count=16, device=device,
                  label=f"lps T={iterations} 16×256×256")
    assert out.shape == maps.shape and torch.isfinite(out).all()
    benchmark.extra_info["checkpoint"] = checkpoint


@pytest.mark.benchmark(group="lps-training")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("dim", [64, 512])
def test_lps_training_step_batch8_256(benchmark, precision, dim):
    """One Adam step of the trainer (batch 8, 256×256, backbone fine-tuned, 5 % flips), CPU, at the shipped
    D = 64 and the paper's 512, in fp32 or in bf16 autocast as the training loop's `precision` runs it."""
    from salplug_lps.train import anchor_loss, anchor_weights

    images = sample_batch(256, 8)
    masks = images.mean(dim=1, keepdim=True) > 0.5
    refiner = LPS(checkpoint=None, dim=dim)
    net = refiner.net.train()
    optim = torch.optim.Adam(net.parameters(), 1e-3)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = anchor_loss(net, images, masks, anchor_weights(masks, None, "mask", 0.05))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        return float(loss.detach())

    loss = measure(benchmark, step, count=8, label=f"lps training step, batch 8 at 256, D={dim}, {precision}", unit="sample",
                   inference=False)
    assert loss > 0
