"""Chain overhead: the same cheap steps called through a `Chain` and directly.

Target (issue: core): the chain adds under 2% for a 16×3×320×320 batch. Both paths run
in one session; the test compares their best rounds, taken alternately, and fails above
the target.
"""

from __future__ import annotations

import time

import pytest
import torch

import salplug
from salplug import Chain

TARGET = 0.02


def _steps():
    return (
        salplug.build("prior", "center"),
        salplug.build("postprocessor", "median", size=3),
        salplug.build("postprocessor", "normalize"),
    )


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.rand(16, 3, 320, 320, generator=torch.Generator().manual_seed(0))


def _direct(steps, images):
    prior, median, normalize = steps
    return normalize(images, median(images, prior(images)))


def _interleaved_best(first, second, rounds: int) -> tuple[float, float]:
    """Best times of two callables run alternately, so drifting machine load hits both alike."""
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for i, call in enumerate((first, second)):
            start = time.perf_counter()
            call()
            best[i] = min(best[i], time.perf_counter() - start)
    return best[0], best[1]


@pytest.mark.benchmark(group="chain-overhead")
def test_direct_calls(benchmark, batch):
    steps = _steps()
    with torch.inference_mode():
        benchmark.pedantic(_direct, args=(steps, batch), rounds=15, warmup_rounds=2)


@pytest.mark.benchmark(group="chain-overhead")
def test_chain_call(benchmark, batch):
    steps = _steps()
    chain = Chain(list(steps))
    with torch.inference_mode():
        assert torch.equal(chain(batch), _direct(steps, batch))
        benchmark.pedantic(chain, args=(batch,), rounds=15, warmup_rounds=2)
        chained, direct = _interleaved_best(lambda: chain(batch), lambda: _direct(steps, batch), rounds=20)
    overhead = chained / direct - 1
    benchmark.extra_info.update(chain_min_s=chained, direct_min_s=direct, overhead=overhead)
    assert overhead < TARGET, f"chain overhead {overhead:.1%} over direct calls, target < {TARGET:.0%}"
