"""Directory runs under faults: other chains' folders, killed writes, links that loop, unreadable folders, Ctrl-C."""

from __future__ import annotations

import json
import os
import stat
import time

import cv2
import numpy as np
import pytest
import torch

import salplug
from salplug import Chain, Refiner
from salplug.cli import main
from salplug.pipeline._manifest import MANIFEST, ManifestError
from salplug.data._inputs import collect_inputs
from salplug.pipeline._runner import run_chain_on_files


def _images(root, count=4):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(root / f"im{i}.png"), np.full((10, 12, 3), 40 * i, np.uint8))
    return root


def chain(size=3):
    return Chain([salplug.build("prior", "center"), salplug.build("postprocessor", "median", size=size)])


def test_a_rerun_with_another_chain_is_refused_and_overwrite_replaces(tmp_path):
    images, out = _images(tmp_path / "in"), tmp_path / "out"
    assert len(run_chain_on_files(chain(3), [images], out, progress=False).written) == 4
    written = json.loads((out / MANIFEST).read_text())
    assert written["chain"]["steps"][1]["config"]["size"] == 3 and "torch" in written["versions"]
    with pytest.raises(ManifestError, match=r"holds maps of another chain \(step 'median' field 'size': 3 there, 7 now"):
        run_chain_on_files(chain(7), [images], out, progress=False)
    assert len(run_chain_on_files(chain(3), [images], out, progress=False).skipped) == 4
    assert len(run_chain_on_files(chain(7), [images], out, overwrite=True, progress=False).written) == 4
    assert json.loads((out / MANIFEST).read_text())["chain"]["steps"][1]["config"]["size"] == 7


def test_maps_without_a_manifest_are_not_trusted(tmp_path):
    images, out = _images(tmp_path / "in"), tmp_path / "out"
    out.mkdir()
    cv2.imwrite(str(out / "im0.png"), np.zeros((10, 12), np.uint8))
    with pytest.raises(ManifestError, match="holds 1 maps but no salplug-run.json"):
        run_chain_on_files(chain(), [images], out, progress=False)


def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path):
    images, out = _images(tmp_path / "in"), tmp_path / "out"
    run_chain_on_files(chain(), [images], out, progress=False)
    stale, fresh = out / ".im0.png.abcd1234.tmp", out / ".im1.png.zzzz9999.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    run_chain_on_files(chain(), [images], out, progress=False)
    assert not stale.exists() and fresh.exists()


def test_maps_honour_the_umask(tmp_path):
    images, out = _images(tmp_path / "in", 1), tmp_path / "out"
    old = os.umask(0o027)
    try:
        run_chain_on_files(chain(), [images], out, progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((out / "im0.png").stat().st_mode) == 0o640


def test_links_that_loop_are_reported_and_the_rest_run(tmp_path):
    images = _images(tmp_path / "in")
    (images / "loop.png").symlink_to(images / "loop.png")
    (images / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (images / "sub").mkdir()
    (images / "sub" / "back").symlink_to(images, target_is_directory=True)
    report = run_chain_on_files(chain(), [images, images / "loop.png"], tmp_path / "out", progress=False)
    assert len(report.written) == 4
    assert set(report.failed) == {str(images / "loop.png"), str(images / "dangling.jpg")}
    assert all("symbolic link" in reason for reason in report.failed.values())


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path, monkeypatch):
    images = _images(tmp_path / "in")
    locked = images / "locked"
    _images(locked, 1)
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    items, failed = collect_inputs([images])
    assert len(items) == 4 and failed == {str(locked): "cannot list this folder: Permission denied"}


class InterruptSecond(Refiner):
    """Stands in for a user pressing Ctrl-C during the second batch."""

    name = "interrupt-second"
    calls = 0

    def forward(self, image, saliency):
        InterruptSecond.calls += 1
        if InterruptSecond.calls == 2:
            raise KeyboardInterrupt
        return saliency


def test_ctrl_c_keeps_what_was_written_and_says_so(tmp_path, capsys, monkeypatch):
    images, out = _images(tmp_path / "in"), tmp_path / "out"
    InterruptSecond.calls = 0
    report = run_chain_on_files(Chain([salplug.build("prior", "center"), InterruptSecond()]), [images], out,
                                batch_size=2, progress=False)
    assert report.interrupted and len(report.written) == 2
    assert report.summary().startswith("interrupted: 2 written")
    spec = tmp_path / "c.yaml"
    spec.write_text("steps:\n  - {kind: prior, component: center}\n")
    monkeypatch.setattr("salplug.cli._app.run_chain_on_files", lambda *a, **k: report)
    assert main(["run", "--chain", str(spec), str(images), "-o", str(tmp_path / "o2")]) == 130
    assert "interrupted: 2 written, 0 skipped (already present), 0 failed" in capsys.readouterr().out


class NaNOnBright(Refiner):
    """Returns NaN for bright images: a step that silently breaks on some inputs."""

    name = "nan-on-bright"

    def forward(self, image, saliency):
        bright = image.mean(dim=(1, 2, 3), keepdim=True) > 0.4
        return torch.where(bright, torch.full_like(saliency, float("nan")), saliency)


def test_a_step_returning_nan_fails_that_image_by_name_and_writes_the_rest(tmp_path):
    images, out = _images(tmp_path / "in"), tmp_path / "out"
    report = run_chain_on_files(Chain([salplug.build("prior", "center"), NaNOnBright()]), [images], out, progress=False)
    assert sorted(p.name for p in report.written) == ["im0.png", "im1.png", "im2.png"]
    assert list(report.failed) == [str(images / "im3.png")]
    assert "output of step 'nan-on-bright' (refiner 'nan-on-bright'): expected finite values" in report.failed[str(images / "im3.png")]
