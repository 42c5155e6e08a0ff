"""Speed figures for the pytest-benchmark suites (core and plugins), all reported one way.

`measure` times a call on its device (CUDA synchronised before the clock stops), keeps the
best round's rate in ``benchmark.extra_info["<unit>_per_s"]`` and prints one line, so the
figures in BENCHMARKS.md and the plugins' READMEs are read off the same field.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

DEVICES: list[str] = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
"""Devices a suite parametrises over: the CPU always, CUDA where present."""


def measure(
    benchmark: Any,
    call: Callable[[], Any],
    *,
    count: int,
    label: str,
    device: str | torch.device = "cpu",
    rounds: int = 3,
    warmup_rounds: int = 1,
    unit: str = "img",
    inference: bool = True,
) -> Any:
    """Run `call` under pytest-benchmark; `count` items per call give the rate. Returns the last output.

    `inference=False` keeps autograd on, for training steps.
    """
    cuda = torch.device(device).type == "cuda"

    def run():
        out = call()
        if cuda:
            torch.cuda.synchronize()
        return out

    with torch.inference_mode() if inference else contextlib.nullcontext():
        out = benchmark.pedantic(run, rounds=rounds, warmup_rounds=warmup_rounds)
    rate = count / benchmark.stats.stats.min
    benchmark.extra_info[f"{unit}_per_s"] = round(rate, 2)
    benchmark.extra_info["device"] = str(device)
    print(f"\n{label}, {device}: {rate:.2f} {unit}/s ({1000 / rate:.1f} ms/{unit})")
    return out
