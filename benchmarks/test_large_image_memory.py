"""Peak memory of one 24-megapixel photo (6000×4000) through `center → median → normalize`.

Target: a single large image stays within a bound, instead of the
6 GB the unbanded median filter took. Each step runs in a fresh process on a contract
image and map already in memory (288 MB and 96 MB); the figure is the growth of the
process's peak resident size during the step alone, so imports and inputs are left out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEIGHT, WIDTH = 4000, 6000
CHAIN_BOUND_MB = 1024
"""The whole chain's extra peak, about 10 bytes per pixel: under twice its input image."""

SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import torch, salplug

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    which, height, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    prior = torch.rand(1, 1, height, width, generator=torch.Generator().manual_seed(1))
    center = salplug.build("prior", "center")
    median = salplug.build("postprocessor", "median", size=5)
    normalize = salplug.build("postprocessor", "normalize")
    steps = {
        "center": lambda: center(image),
        "median": lambda: median(image, prior),
        "normalize": lambda: normalize(image, prior),
        "chain": lambda: salplug.Chain([center, median, normalize])(image),
    }
    with torch.inference_mode():
        salplug.Chain([center, median, normalize])(image[..., :16, :16])
        before, start = peak_mb(), time.perf_counter()
        steps[which]()
        print(json.dumps({"extra_mb": peak_mb() - before, "seconds": time.perf_counter() - start}))
    """
)


def _measure(step: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, step, str(HEIGHT), str(WIDTH)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.benchmark(group="large-image-memory")
@pytest.mark.parametrize("step", ["center", "median", "normalize", "chain"])
def test_peak_memory_of_a_24_megapixel_photo(benchmark, step):
    figures = benchmark.pedantic(_measure, args=(step,), rounds=1, iterations=1)
    benchmark.extra_info.update({k: round(v, 1) for k, v in figures.items()})
    print(f"\n{step}: +{figures['extra_mb']:.0f} MB peak, {figures['seconds']:.1f} s ({HEIGHT}×{WIDTH}, 1 thread)")
    if step == "chain":
        assert figures["extra_mb"] < CHAIN_BOUND_MB, f"chain peak +{figures['extra_mb']:.0f} MB, bound {CHAIN_BOUND_MB} MB"
