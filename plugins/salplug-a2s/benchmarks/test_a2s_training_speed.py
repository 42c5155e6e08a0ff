"""A2S training throughput: samples per second of one SGD step, CPU and, where present, CUDA.

Stage 1 trains only its head on cached frozen features, so its step starts from encoder
levels; stage 2 fine-tunes the whole detector on images and pseudo labels, in fp32 and in
bf16 autocast (`precision`; fast on CPUs with AMX), on each encoder with offline weights.
Both time the step the training loop takes with each trainer's loss (forward, backward, SGD
step) at the paper's batch of 8 and 320×320.
"""

from __future__ import annotations

import math

import pytest
import torch

from salplug.testing import DEVICES, measure
from salplug.data import sample_batch
from salplug_a2s import A2S, A2SStage1
from salplug_a2s.common import BACKBONES
from salplug_a2s.losses import activation_loss
from salplug_a2s.train_stage1 import A2SStage1Trainer
from salplug_a2s.train_stage2 import batch_loss

BATCH, SIZE = 8, 320


def sgd_step(optim: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """What the loop does with a trainer's loss: backward pass and optimiser step."""
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()
    return float(loss.detach())


@pytest.mark.benchmark(group="a2s-training")
@pytest.mark.parametrize("fuse_stride", [4, 2])
@pytest.mark.parametrize("device", DEVICES)
def test_stage1_head_step(benchmark, device, fuse_stride):
    cfg = A2SStage1Trainer.Config(size=SIZE, fuse_stride=fuse_stride)
    prior = A2SStage1(checkpoint=None, size=SIZE, fuse_stride=fuse_stride).to(device)
    with torch.no_grad():
        levels = [level.detach() for level in prior.backbone(sample_batch(SIZE, BATCH).to(device))]
    prior.train()
    optim = torch.optim.SGD(prior.head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    def step() -> float:
        fused, per_level = prior.decision(levels, SIZE, SIZE)
        return sgd_step(optim, activation_loss([fused, *per_level], cfg.level_weights, l1=cfg.l1,
                                               fraction=cfg.sample_fraction))

    loss = measure(benchmark, step, count=BATCH, device=device,
                   label=f"a2s stage-1 head step, batch {BATCH} at {SIZE}, fuse stride {fuse_stride}", rounds=5,
                   unit="sample", inference=False)
    assert math.isfinite(loss) and loss >= 0


@pytest.mark.benchmark(group="a2s-training")
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("device", DEVICES)
def test_stage2_detector_step(benchmark, device, precision, backbone):
    model = A2S(checkpoint=None, backbone=backbone, size=SIZE).to(device)
    model.train()
    images = sample_batch(SIZE, BATCH).to(device)
    with torch.no_grad():
        labels = (images.mean(dim=1, keepdim=True) > 0.5).float()
    groups = [{"params": list(model.decoder.parameters()), "lr": 0.005},
              {"params": list(model.backbone.parameters()), "lr": 0.0005}]
    optim = torch.optim.SGD(groups, momentum=0.9, weight_decay=5e-4)


    def step() -> float:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, _ = batch_loss(model, images, labels)
        return sgd_step(optim, loss)

    loss = measure(benchmark, step, count=BATCH, device=device,
                   label=f"a2s stage-2 detector step, {backbone}, batch {BATCH} at {SIZE}, {precision}", unit="sample",
                   inference=False)
    assert math.isfinite(loss) and loss >= 0
