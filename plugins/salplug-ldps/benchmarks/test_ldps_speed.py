"""LDPS refiner speed: a batch of 16 photos at 256×256, checkpoint mode, on the CPU and, where present, CUDA.

Figures are images per second from the best of the rounds, in ``benchmark.extra_info``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from skimage import data

from salplug_ldps import LDPS
from salplug_ldps.refiner import shipped_checkpoint

DEVICES = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photo_batch(size: int, batch: int) -> torch.Tensor:
    photos = []
    for name in PHOTOS:
        image = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255
        photos.append(F.interpolate(image, size=(size, size), mode="bilinear", antialias=True).clamp(0, 1))
    return torch.cat([photos[i % len(photos)] for i in range(batch)])


def centre_maps(images: torch.Tensor) -> torch.Tensor:
    height, width = images.shape[-2:]
    ys = torch.linspace(-1, 1, height).view(-1, 1)
    xs = torch.linspace(-1, 1, width).view(1, -1)
    bias = torch.exp(-(ys**2 + xs**2) / 0.3)
    return bias.expand(images.shape[0], 1, height, width).contiguous()


@pytest.mark.benchmark(group="ldps")
@pytest.mark.parametrize("device", DEVICES)
def test_ldps_refine_batch16_256(benchmark, device):
    images = photo_batch(256, 16).to(device)
    maps = centre_maps(images).to(device)
    checkpoint = "shipped" if shipped_checkpoint().exists() else None
    refiner = LDPS(checkpoint=checkpoint).to(device)

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
    print(f"\nldps checkpoint mode 16×256×256, {device}: {rate:.1f} img/s ({1000 / rate:.1f} ms/image)")
