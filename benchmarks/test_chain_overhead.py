"""Chain overhead: the same cheap steps called through a `Chain` and directly.

Target: the chain, with its default value checks at every step
boundary, adds under 2% for a 16×3×320×320 batch. The overhead is
the ratio of the best CPU times of chain and direct calls, taken alternately so that the
drift of a shared machine hits both alike. One torch thread makes the process's CPU time
the work done, without the time other tenants of the host take.
"""

from __future__ import annotations

import time

import pytest
import torch

import salplug
from salplug import Chain

TARGET = 0.02
ROUNDS = 30


def _steps():
    return (
        salplug.build("prior", "center"),
        salplug.build("postprocessor", "median", size=3),
        salplug.build("postprocessor", "normalize"),
    )


def _direct(steps, images):
    prior, median, normalize = steps
    return normalize(images, median(images, prior(images)))


def _interleaved_overhead(chain, steps, images) -> float:
    best = {"chain": float("inf"), "direct": float("inf")}
    for _ in range(ROUNDS):
        for which in best:
            start = time.process_time()
            chain(images) if which == "chain" else _direct(steps, images)
            best[which] = min(best[which], time.process_time() - start)
    return best["chain"] / best["direct"] - 1


@pytest.fixture(scope="module")
def batch():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch.rand(16, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    torch.set_num_threads(threads)


@pytest.mark.benchmark(group="chain-overhead")
def test_direct_calls(benchmark, batch):
    steps = _steps()
    with torch.inference_mode():
        benchmark.pedantic(_direct, args=(steps, batch), rounds=10, warmup_rounds=1)


@pytest.mark.benchmark(group="chain-overhead")
@pytest.mark.parametrize("check_values", [True, False], ids=["default-value-checks", "check_values-off"])
def test_chain_call(benchmark, batch, check_values):
    steps = _steps()
    chain = Chain(list(steps), check_values=check_values)
    with torch.inference_mode():
        assert torch.equal(chain(batch), _direct(steps, batch))
        benchmark.pedantic(chain, args=(batch,), rounds=10, warmup_rounds=1)
        overhead = _interleaved_overhead(chain, steps, batch)
    benchmark.extra_info["overhead"] = round(overhead, 4)
    print(f"\nchain overhead ({'with' if check_values else 'without'} value checks): {overhead:+.2%}")
    if check_values:
        assert overhead < TARGET, f"chain overhead {overhead:.1%} over direct calls, target < {TARGET:.0%}"
