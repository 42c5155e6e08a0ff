"""Post-processor speed (backbone and post-processor issue): DenseCRF per image, guided filter batched.

DenseCRF runs pydensecrf's C++ solver image by image on the CPU (10 steps, A2S defaults);
the guided filter is one batched torch computation, on the CPU and, where present, CUDA.
Figures are images per second from the best of the rounds.
"""

from __future__ import annotations

import pytest
import torch

import salplug

from salplug.samples import sample_batch

DEVICES = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _report(benchmark, images: int, label: str) -> None:
    rate = images / benchmark.stats.stats.min
    benchmark.extra_info["img_per_s"] = round(rate, 2)
    print(f"\n{label}: {rate:.1f} img/s ({1000 / rate:.1f} ms/image)")


@pytest.mark.benchmark(group="densecrf")
def test_densecrf_per_image_320(benchmark):
    images = sample_batch(320, 1)
    maps = salplug.build("prior", "center")(images)
    crf = salplug.build("postprocessor", "densecrf")
    out = benchmark.pedantic(crf, args=(images, maps), rounds=10, warmup_rounds=1)
    assert out.shape == maps.shape and torch.isfinite(out).all()
    _report(benchmark, 1, "densecrf 320×320, CPU")


@pytest.mark.benchmark(group="guided")
@pytest.mark.parametrize("guide", ["gray", "color"])
@pytest.mark.parametrize("device", DEVICES)
def test_guided_batched_320(benchmark, guide, device):
    images = sample_batch(320, 16).to(device)
    maps = salplug.build("prior", "center")(images).to(device)
    guided = salplug.build("postprocessor", "guided", guide=guide).to(device)

    def run():
        out = guided(images, maps)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    with torch.inference_mode():
        out = benchmark.pedantic(run, rounds=10, warmup_rounds=2)
    assert out.shape == maps.shape and torch.isfinite(out).all()
    _report(benchmark, 16, f"guided ({guide} guide) 16×320×320, {device}")
