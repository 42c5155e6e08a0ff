"""`--engine ray`: the local runner's maps and guarantees, and the local scores, on Ray clusters.

One local cluster (2 CPUs) serves most tests; the last one simulates two nodes on this
machine and removes one mid-run. Ray's start-up dominates, so the tests are few.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from salplug import Chain
from salplug.data._datasets import FolderDataset, SODDataset, link_view
from salplug.metrics._evaluation import score_chain, score_folder
from salplug.pipeline._manifest import LocalFolder, ManifestError, OutputFolderError
from salplug.pipeline._runner import run_chain_on_files
from tests.shared_data import sod_dev

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'salplug[ray]' to run these tests)")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'salplug[ray]')")

from salplug.distributed._ray_eval import score_chain_ray, score_folder_ray  # noqa: E402
from salplug.distributed._ray_run import run_chain_on_files_ray  # noqa: E402

pytestmark = pytest.mark.ray

SPEC = {
    "version": 1,
    "steps": [
        {"kind": "prior", "component": "center", "config": {"sigma": 0.3}},
        {"kind": "postprocessor", "component": "median", "name": "smooth", "config": {"size": 5}},
    ],
}


def photos(tmp_path: Path, count: int) -> Path:
    """Links to `count` sod-dev photos (two orientations) and one file that is not an image."""
    source = sorted((sod_dev() / "images").iterdir())[:count]
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in source:
        (folder / path.name).symlink_to(path)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def same_bytes(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.glob("*.png"))
    assert names and names == sorted(p.name for p in b.glob("*.png"))
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.data
def test_maps_are_byte_identical_to_the_local_runner_and_bad_images_reported(local_cluster, tmp_path):
    folder = photos(tmp_path, 10)
    local = run_chain_on_files(Chain.from_spec(SPEC), [folder], tmp_path / "local", progress=False, save_steps=True)
    report = run_chain_on_files_ray(SPEC, [folder], tmp_path / "ray", workers=2, batch_size=3, progress=False,
                                    save_steps=True)
    assert len(report.written) == len(local.written) == 10
    assert list(report.failed) == [str(folder / "broken.jpg")] and "decodable" in report.failed[str(folder / "broken.jpg")]
    same_bytes(tmp_path / "local", tmp_path / "ray")
    same_bytes(tmp_path / "local" / "steps" / "smooth", tmp_path / "ray" / "steps" / "smooth")
    assert (tmp_path / "ray" / "salplug-run.json").read_text() == (tmp_path / "local" / "salplug-run.json").read_text()
    again = run_chain_on_files_ray(SPEC, [folder], tmp_path / "ray", progress=False, save_steps=True)
    assert len(again.skipped) == 10 and not again.written


@pytest.mark.data
def test_a_filesystem_uri_gets_the_same_maps_manifest_and_resume(local_cluster, tmp_path):
    folder = photos(tmp_path, 5)
    run_chain_on_files(Chain.from_spec(SPEC), [folder], tmp_path / "local", progress=False, save_steps=True)
    uri = (tmp_path / "remote").as_uri()
    report = run_chain_on_files_ray(SPEC, [folder], uri, workers=1, progress=False, save_steps=True)
    assert sorted(report.written) == sorted(f"{uri}/{p.stem}.png" for p in folder.glob("*") if p.stem != "broken")
    assert list(report.failed) == [str(folder / "broken.jpg")]
    same_bytes(tmp_path / "local", tmp_path / "remote")
    same_bytes(tmp_path / "local" / "steps" / "smooth", tmp_path / "remote" / "steps" / "smooth")
    assert (tmp_path / "remote" / "salplug-run.json").read_text() == (tmp_path / "local" / "salplug-run.json").read_text()
    assert not list((tmp_path / "remote").rglob("*.tmp"))
    again = run_chain_on_files_ray(SPEC, [folder], uri, progress=False, save_steps=True)
    assert len(again.skipped) == 5 and not again.written
    other = {**SPEC, "steps": SPEC["steps"][:1]}
    with pytest.raises(ManifestError, match="another chain"):
        run_chain_on_files_ray(other, [folder], uri, progress=False)


@pytest.mark.data
@pytest.mark.subprocess
def test_a_killed_job_resumes_and_writes_the_rest(local_cluster, tmp_path):
    folder = photos(tmp_path, 16)
    spec = tmp_path / "chain.yaml"
    spec.write_text(
        "version: 1\nsteps:\n  - {kind: prior, component: center}\n"
        "  - {kind: postprocessor, component: median, config: {size: 15}}\n"
    )
    out = tmp_path / "ray"
    job = subprocess.Popen(
        [sys.executable, "-m", "salplug", "run", "--chain", str(spec), str(folder), "-o", str(out), "--engine", "ray",
         "--batch-size", "1", "--no-progress", "--address", ray.get_runtime_context().gcs_address],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.png"))) < 3 and job.poll() is None:
        time.sleep(0.1)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    before = len(list(out.glob("*.png")))
    assert 0 < before < 16, "the job should have been killed midway"
    report = run_chain_on_files_ray(spec, [folder], out, workers=2, progress=False)
    assert len(report.skipped) == before and len(report.written) == 16 - before
    local = run_chain_on_files(Chain.from_spec(spec), [folder], tmp_path / "local", progress=False)
    assert len(local.written) == 16
    same_bytes(tmp_path / "local", out)


@pytest.mark.data
def test_a_folder_another_run_holds_is_refused_before_the_cluster_is_joined(tmp_path):
    folder = photos(tmp_path, 2)
    for out in (tmp_path / "out", tmp_path / "remote"):
        target = out.as_uri() if out.name == "remote" else out
        with LocalFolder(out).lock(), pytest.raises(OutputFolderError, match="in use by another salplug run"):
            run_chain_on_files_ray(SPEC, [folder], target, progress=False)
        assert not list(out.glob("*.png"))


@pytest.mark.data
def test_eval_scores_and_curves_equal_the_single_process_ones(local_cluster, tmp_path):
    data = FolderDataset(sod_dev(), masks=True)
    view = link_view(data, data.keys[:12], tmp_path / "view", {"dss": sod_dev() / "priors" / "dss"})
    dataset = SODDataset(view)
    metrics = ["mae", "fmeasure", "smeasure", "emeasure"]
    chain = Chain.from_spec(SPEC)
    expected = score_chain(dataset, chain, "c", priors=["dss"], score_input=True, metrics=metrics, batch_size=4)
    got = score_chain_ray(dataset, chain, "c", priors=["dss"], score_input=True, metrics=metrics, batch_size=4,
                          workers=2)
    expected.append(score_folder(dataset, dataset.prior_folder("dss"), "dss", metrics=metrics, batch_size=4))
    got.append(score_folder_ray(dataset, dataset.prior_folder("dss"), "dss", metrics=metrics, batch_size=4, workers=2))
    for a, b in zip(expected, got, strict=True):
        assert (a.name, a.count) == (b.name, b.count) == (a.name, 12)
        assert a.scores.keys() == b.scores.keys()
        for key in a.scores:
            assert b.scores[key] == pytest.approx(a.scores[key], abs=1e-9, rel=0)
        assert a.curves.keys() == b.curves.keys()
        for key in a.curves:
            assert b.curves[key] == pytest.approx(a.curves[key], abs=1e-9, rel=0)


@pytest.mark.data
def test_a_node_removed_mid_run_loses_nothing(tmp_path):
    from ray.cluster_utils import Cluster

    ray.shutdown()  # the module's local cluster, if it ran: a driver joins one cluster at a time
    folder = photos(tmp_path, 16)
    spec = {"version": 1, "steps": [{"kind": "prior", "component": "center"},
                                    {"kind": "postprocessor", "component": "median", "config": {"size": 15}}]}
    # fast failure detection, and room on the head for the actor Ray restarts there
    fast = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 2}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "_system_config": fast})
    worker = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    out = tmp_path / "ray"
    removed = threading.Event()

    def remove_worker_once_maps_appear():
        deadline = time.time() + 120
        while time.time() < deadline and len(list(out.glob("*.png"))) < 4:
            time.sleep(0.05)
        cluster.remove_node(worker, allow_graceful=False)
        removed.set()

    remover = threading.Thread(target=remove_worker_once_maps_appear, daemon=True)
    try:
        remover.start()
        report = run_chain_on_files_ray(spec, [folder], out, workers=2, batch_size=1, progress=False)
        remover.join(timeout=120)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert removed.is_set()
    assert len(report.written) == len(set(report.written)) == 16
    assert list(report.failed) == [str(folder / "broken.jpg")]
    local = run_chain_on_files(Chain.from_spec(spec), [folder], tmp_path / "local", progress=False)
    assert len(local.written) == 16
    same_bytes(tmp_path / "local", out)
