"""`salplug run --engine ray` against the local runner: the same photos and chain, CPU.

Each engine writes the maps of the first 96 sod-dev photos (center prior, 5×5 median,
normalize) into a fresh folder per round. Ray's start-up is reported apart: the cluster's
`ray.init` once, and per run the actor start (chain built once per actor) measured as the
time to map a single photo. The img/s of a Ray row is over the whole run, start-up included,
and `marginal_img_per_s` leaves the one-photo run's time out.
"""

from __future__ import annotations

import itertools
import time

import pytest

from salplug import Chain
from salplug.pipeline import run_chain_on_files
from tests.shared_data import sod_dev

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'salplug[ray]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'salplug[ray]')")

from salplug.distributed import run_chain_on_files_ray  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.data]

COUNT = 96
SPEC = {"version": 1, "steps": [
    {"kind": "prior", "component": "center"},
    {"kind": "postprocessor", "component": "median", "config": {"size": 5}},
    {"kind": "postprocessor", "component": "normalize"},
]}
_round = itertools.count()


@pytest.fixture(scope="module")
def photos():
    return sorted((sod_dev() / "images").iterdir())[:COUNT]


@pytest.fixture(scope="module")
def cluster():
    start = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    seconds = time.perf_counter() - start
    print(f"\nray.init (local cluster, 2 CPUs): {seconds:.1f} s")
    yield seconds
    ray.shutdown()


@pytest.mark.benchmark(group="ray-run")
def test_local_runner(benchmark, photos, tmp_path):
    chain = Chain.from_spec(SPEC)
    benchmark.pedantic(lambda: run_chain_on_files(chain, photos, tmp_path / f"r{next(_round)}", progress=False),
                       rounds=3, warmup_rounds=1)
    benchmark.extra_info["img_per_s"] = round(COUNT / benchmark.stats.stats.min, 2)
    print(f"\nlocal runner: {benchmark.extra_info['img_per_s']} img/s")


@pytest.mark.benchmark(group="ray-run")
@pytest.mark.parametrize("workers", [1, 2])
def test_ray_runner(benchmark, photos, tmp_path, cluster, workers):
    def run(items):
        return run_chain_on_files_ray(SPEC, items, tmp_path / f"r{next(_round)}", workers=workers, batch_size=8,
                                      progress=False)

    start = time.perf_counter()
    run(photos[:1])
    startup = time.perf_counter() - start
    report = benchmark.pedantic(lambda: run(photos), rounds=3, warmup_rounds=0)
    assert len(report.written) == COUNT
    best = benchmark.stats.stats.min
    benchmark.extra_info.update(
        workers=workers, img_per_s=round(COUNT / best, 2), ray_init_s=round(cluster, 1),
        startup_s=round(startup, 1), marginal_img_per_s=round((COUNT - 1) / max(best - startup, 1e-9), 2),
    )
    print(f"\nray, {workers} worker(s): {COUNT / best:.2f} img/s whole run; start-up (1 photo) {startup:.1f} s; "
          f"{benchmark.extra_info['marginal_img_per_s']} img/s after it")
