"""Baseline prior speed: inference on 16 photos at its 256×256 working size, and training steps.

Inference is images per second from the best round; training is samples per second of one
optimiser step (forward, BCE + IoU loss, backward, Adam) on a batch of 16 at 256×256, in
the channels-last layout the trainer uses by default and in the default layout, to record
what channels-last buys on this CPU. Figures are in ``benchmark.extra_info``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from salplug.testing import DEVICES, measure
from salplug.data import sample_batch
from salplug_baseline import Baseline
from salplug_baseline.train import saliency_loss


def _prior(device: str) -> Baseline:
    return Baseline(checkpoint="shipped").to(device)


@pytest.mark.benchmark(group="baseline")
@pytest.mark.parametrize("device", DEVICES)
def test_baseline_prior_batch16_256(benchmark, device):
    images = sample_batch(256, 16).to(device)
    prior = _prior(device)
    out = measure(benchmark, lambda: prior(images), count=16, device=device, label="baseline 16×256×256")
    assert out.shape == (16, 1, 256, 256) and torch.isfinite(out).all()


@pytest.mark.benchmark(group="baseline-training")
@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
@pytest.mark.parametrize("device", DEVICES)
def test_baseline_training_step_batch16_256(benchmark, device, layout):
    images = sample_batch(256, 16).to(device)
    masks = (images.mean(dim=1, keepdim=True) > 0.5).float()
    prior = Baseline(checkpoint=None).to(device)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    prior.to(memory_format=fmt).train()
    optim = torch.optim.Adam(prior.parameters(), 1e-4)
    x = images.contiguous(memory_format=fmt)

    def step():
        logits = F.interpolate(prior.logits(x), size=masks.shape[-2:], mode="bilinear", align_corners=False)
        loss = saliency_loss(logits, masks)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        return loss.detach()

    loss = measure(benchmark, step, count=16, device=device, label=f"baseline training step ({layout})", rounds=5,
                   warmup_rounds=2, unit="sample", inference=False)
    assert torch.isfinite(loss)
