"""Backbone forward speed at 256×256 and 320×320, in images per second.

The two offline-weight backbones, frozen, batch 16, inference mode; on CUDA (when present)
also channels-last with bf16 autocast, the configuration the method plugins use there.
"""

from __future__ import annotations

import pytest
import torch

import salplug
from salplug.testing import measure
from salplug.data import sample_batch

BATCH = 16
SETUPS = [("cpu", {})]
if torch.cuda.is_available():
    SETUPS += [("cuda", {}), ("cuda", {"channels_last": True, "autocast": "bf16"})]


@pytest.mark.benchmark(group="backbone-forward")
@pytest.mark.parametrize("size", [256, 320])
@pytest.mark.parametrize("name", ["mobilenetv2_100", "tf_efficientnet_lite0"])
@pytest.mark.parametrize(("device", "options"), SETUPS, ids=lambda s: s if isinstance(s, str) else "-".join(map(str, s.values())) or "fp32")
def test_backbone_forward(benchmark, name, size, device, options):
    backbone = salplug.build("backbone", name, **options).to(device).eval()
    images = sample_batch(size, BATCH).to(device)
    features = measure(benchmark, lambda: backbone(images), count=BATCH, device=device,
                       label=f"{name} {size}×{size} {options or 'fp32'}", rounds=5 if device == "cpu" else 20)
    assert features[-1].shape[-1] == size // 32
