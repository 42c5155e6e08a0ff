"""Directory runs that must hold whatever the folders hold: runs racing for one output folder, files
that cannot be decoded, pipes, GIF and HEIC files, linked folders, long names, maps cut short, step
maps beside photo folders, unusable devices and specs, and batches bounded by pixels."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import salplug
from salplug import Chain, PriorProvider
from salplug.cli import main
from salplug.pipeline._manifest import MANIFEST, LocalFolder, OutputFolderError
from salplug.pipeline._batching import size_batches
from salplug.pipeline._runner import run_chain_on_files

SPEC = "steps:\n  - {kind: prior, component: center}\n  - {kind: postprocessor, component: median, name: smooth, config: {size: %d}}\n"


def _photos(root: Path, count: int = 3, size: tuple[int, int] = (10, 12)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        assert cv2.imwrite(str(root / f"im{i}.png"), np.full((*size, 3), 40 * i, np.uint8))
    return root


def chain() -> Chain:
    return Chain([salplug.build("prior", "center"), salplug.build("postprocessor", "median", size=3)])


class Waiting(PriorProvider):
    """A prior that holds its first batch until the test lets it go: a run caught mid-way."""

    name = "waiting"

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.started, self.go = threading.Event(), threading.Event()

    def forward(self, image, keys=None):
        self.started.set()
        assert self.go.wait(30)
        return torch.full_like(image[:, :1], 0.5)


def test_a_second_run_into_a_folder_in_use_is_refused_and_the_first_finishes(tmp_path):
    photos, out = _photos(tmp_path / "in"), tmp_path / "out"
    prior = Waiting()
    first: dict = {}
    worker = threading.Thread(target=lambda: first.update(report=run_chain_on_files(
        Chain([prior]), [photos], out, progress=False)))
    worker.start()
    try:
        assert prior.started.wait(30)
        with pytest.raises(OutputFolderError, match=r"is in use by another salplug run \(process \d+"):
            run_chain_on_files(chain(), [photos], out, progress=False)
    finally:
        prior.go.set()
        worker.join(30)
    assert len(first["report"].written) == 3
    assert json.loads((out / MANIFEST).read_text())["chain"]["steps"][0]["component"] == "waiting"


def test_the_cli_refuses_a_folder_in_use_in_one_line(tmp_path, capsys):
    photos, out = _photos(tmp_path / "in"), tmp_path / "out"
    spec = tmp_path / "c.yaml"
    spec.write_text(SPEC % 3)
    with LocalFolder(out).lock():
        assert main(["run", "--chain", str(spec), str(photos), "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in use by another salplug run" in err
    assert not list(out.glob("*.png"))


@pytest.mark.subprocess
def test_two_runs_of_different_chains_started_together_never_mix_maps(tmp_path):
    photos, out = _photos(tmp_path / "in", 6), tmp_path / "out"
    jobs = []
    for size in (3, 5):
        spec = tmp_path / f"c{size}.yaml"
        spec.write_text(SPEC % size)
        jobs.append(subprocess.Popen([sys.executable, "-m", "salplug", "run", "--chain", str(spec), str(photos),
                                      "-o", str(out), "--no-progress"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True))
    results = [(job.wait(120), job.stderr.read()) for job in jobs]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert loser.startswith("salplug: error: ") and loser.count("\n") == 1
    assert "in use by another salplug run" in loser or "holds maps of another chain" in loser
    winner = [3, 5][[code for code, _ in results].index(0)]
    assert json.loads((out / MANIFEST).read_text())["chain"]["steps"][1]["config"]["size"] == winner
    assert len(list(out.glob("*.png"))) == 6


def _png(width: int, height: int) -> bytes:
    """A PNG header declaring `width`×`height` RGB pixels, with no pixel data: under 100 bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decode_errors_of_every_kind_fail_that_file_only(tmp_path):
    photos = _photos(tmp_path / "in")
    forged = photos / "forged.png"
    forged.write_bytes(_png(100000, 100000))
    assert len(forged.read_bytes()) < 100
    bomb = photos / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)
    report = run_chain_on_files(chain(), [photos], tmp_path / "out", progress=False)
    assert sorted(p.name for p in report.written) == ["im0.png", "im1.png", "im2.png"]
    assert set(report.failed) == {str(forged), str(bomb)}
    assert "pixels, above the limit of 150000000" in report.failed[str(forged)]
    assert "pixels, above the limit of 150000000" in report.failed[str(bomb)]
    with pytest.raises(salplug.errors.ImageReadError, match="OpenCV cannot decode it: .*CV_IO_MAX_IMAGE_PIXELS"):
        salplug.data.read_image(forged, max_pixels=10**11)


def test_the_pixel_limit_is_an_option_and_photos_under_it_are_read(tmp_path):
    photos = _photos(tmp_path / "in", 2, (10, 12))
    big = photos / "big.png"
    assert cv2.imwrite(str(big), np.zeros((30, 40, 3), np.uint8))
    report = run_chain_on_files(chain(), [photos], tmp_path / "out", max_image_pixels=1000, progress=False)
    assert list(report.failed) == [str(big)] and "1200 pixels, above the limit of 1000" in report.failed[str(big)]
    assert len(run_chain_on_files(chain(), [photos], tmp_path / "all", max_image_pixels=1200,
                                  progress=False).written) == 3
    spec = tmp_path / "c.yaml"
    spec.write_text(SPEC % 3)
    assert main(["run", "--chain", str(spec), str(photos), "-o", str(tmp_path / "cli"), "--no-progress",
                 "--max-image-pixels", "1000"]) == 1


def test_a_pipe_named_like_a_photo_is_reported_not_read(tmp_path):
    photos = _photos(tmp_path / "in")
    pipe = photos / "camera.jpg"
    os.mkfifo(pipe)
    done: dict = {}
    worker = threading.Thread(target=lambda: done.update(
        report=run_chain_on_files(chain(), [photos], tmp_path / "out", progress=False)), daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():
        with open(pipe, "wb"):
            pass
        worker.join(10)
        pytest.fail("the run blocked reading a pipe")
    assert len(done["report"].written) == 3
    assert "not a regular file" in done["report"].failed[str(pipe)]


def test_a_gif_is_read_by_its_first_frame_and_heic_is_reported(tmp_path):
    photos = _photos(tmp_path / "in", 1)
    frames = [Image.new("RGB", (12, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(photos / "moving.gif", save_all=True, append_images=frames[1:])
    (photos / "phone.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    report = run_chain_on_files(chain(), [photos], tmp_path / "out", progress=False)
    assert sorted(p.name for p in report.written) == ["im0.png", "moving.png"]
    assert list(report.failed) == [str(photos / "phone.HEIC")]
    assert "HEIC files are not read" in report.failed[str(photos / "phone.HEIC")]
    assert salplug.data.read_image(photos / "moving.gif")[0, 0].tolist() == [1.0, 0.0, 0.0]


def test_a_linked_subfolder_is_walked_and_links_that_loop_still_end(tmp_path):
    photos = _photos(tmp_path / "in", 1)
    elsewhere = _photos(tmp_path / "elsewhere", 2)
    (photos / "linked").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "back").symlink_to(photos, target_is_directory=True)
    report = run_chain_on_files(chain(), [photos], tmp_path / "out", progress=False)
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in report.written) == [
        "im0.png", "linked/im0.png", "linked/im1.png"]
    assert report.failed == {}


def test_a_photo_with_a_very_long_name_gets_its_map(tmp_path):
    photos = tmp_path / "in"
    photos.mkdir()
    name = "p" * 240 + ".png"
    assert len(name) == 244
    assert cv2.imwrite(str(photos / name), np.zeros((6, 8, 3), np.uint8))
    report = run_chain_on_files(chain(), [photos], tmp_path / "out", progress=False)
    assert report.failed == {} and report.written == [tmp_path / "out" / name]


def test_a_map_cut_short_is_not_taken_for_a_finished_one(tmp_path):
    photos, out = _photos(tmp_path / "in"), tmp_path / "out"
    run_chain_on_files(chain(), [photos], out, progress=False)
    whole = (out / "im1.png").read_bytes()
    (out / "im1.png").write_bytes(whole[: len(whole) // 2])
    again = run_chain_on_files(chain(), [photos], out, progress=False)
    assert again.written == [out / "im1.png"] and len(again.skipped) == 2
    assert (out / "im1.png").read_bytes() == whole


def test_a_photo_folder_named_steps_never_mixes_with_step_maps(tmp_path):
    photos = _photos(tmp_path / "in", 1)
    _photos(photos / "steps" / "smooth", 1, (4, 4))
    out = tmp_path / "out"
    report = run_chain_on_files(Chain([("centre", salplug.build("prior", "center")),
                                       ("smooth", salplug.build("postprocessor", "median", size=3))]),
                                [photos], out, save_steps=True, progress=False)
    clash = str(photos / "steps" / "smooth" / "im0.png")
    assert list(report.failed) == [clash] and "step 'smooth' map of im0" in report.failed[clash]
    assert cv2.imread(str(out / "steps" / "smooth" / "im0.png")).shape[:2] == (10, 12)


@pytest.mark.parametrize("command", ["run", "eval"])
def test_the_meta_device_is_refused_before_any_work(tmp_path, capsys, command):
    photos, out = _photos(tmp_path / "set" / "images"), tmp_path / "out"
    _photos(tmp_path / "set" / "masks")
    spec = tmp_path / "c.yaml"
    spec.write_text(SPEC % 3)
    inputs = [str(photos)] if command == "run" else ["--dataset", str(tmp_path / "set")]
    assert main([command, "--chain", str(spec), *inputs, "-o", str(out), "--device", "meta"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device: expected a device that computes" in err and "'meta'" in err
    assert not out.exists()


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_a_setting_of_infinity_or_nan_is_refused_before_any_work(tmp_path, capsys, value):
    photos, out = _photos(tmp_path / "in"), tmp_path / "out"
    spec = tmp_path / "c.yaml"
    spec.write_text(SPEC % 3)
    assert main(["run", "--chain", str(spec), str(photos), "-o", str(out), "--set", f"center.sigma={value}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "field 'sigma': Input should be a finite number" in err
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_spec_nested_too_deep_is_one_line(tmp_path, capsys, suffix):
    photos = _photos(tmp_path / "in", 1)
    spec = tmp_path / f"deep{suffix}"
    depth = 100_000
    spec.write_text('{"steps": [{"kind": "prior", "component": "center", "config": {"x": '
                    + "[" * depth + "]" * depth + "}}]}")
    assert main(["run", "--chain", str(spec), str(photos), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nested deeper than" in err


def test_batches_are_bounded_by_pixels_as_well_as_by_count():
    entries = [(i, (100, 100)) for i in range(5)] + [(9, (300, 300))]
    batches = list(size_batches(entries, lambda e: e[1], 8, max_pixels=25_000))
    assert [[i for i, _ in b] for b in batches] == [[0, 1], [2, 3], [9], [4]]
    assert [len(b) for b in size_batches(entries[:5], lambda e: e[1], 8)] == [5]


class Recording(PriorProvider):
    name = "recording"

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.sizes: list[int] = []

    def forward(self, image, keys=None):
        self.sizes.append(image.shape[0])
        return torch.full_like(image[:, :1], 0.5)


def test_the_runner_bounds_its_batches_by_pixels(tmp_path):
    photos = _photos(tmp_path / "in", 5, (20, 10))
    prior = Recording()
    report = run_chain_on_files(Chain([prior]), [photos], tmp_path / "out", batch_size=8, max_batch_pixels=400,
                                progress=False)
    assert len(report.written) == 5 and prior.sizes == [2, 2, 1]


def test_maps_written_into_the_input_folder_are_not_read_back_as_photos(tmp_path):
    photos = tmp_path / "in"
    photos.mkdir()
    for name in ("a.jpg", "b.jpg", "sub/c.jpg"):
        (photos / name).parent.mkdir(exist_ok=True)
        assert cv2.imwrite(str(photos / name), np.full((8, 10, 3), 90, np.uint8))
    steps = Chain([("centre", salplug.build("prior", "center")), ("smooth", salplug.build("postprocessor", "median"))])
    first = run_chain_on_files(steps, [photos], photos, save_steps=True, progress=False)
    assert len(first.written) == 3 and first.failed == {}
    again = run_chain_on_files(steps, [photos], photos, save_steps=True, progress=False)
    assert again.written == [] and len(again.skipped) == 3 and again.failed == {}
    assert not (photos / "steps" / "centre" / "steps").exists()


def test_memory_running_out_on_one_photo_costs_that_photo_only(tmp_path, monkeypatch):
    photos = _photos(tmp_path / "in")
    real = salplug.data._io._to_unit

    def short_of_memory(array, path):
        if Path(path).name == "im1.png":
            raise MemoryError
        return real(array, path)

    monkeypatch.setattr(salplug.data._io, "_to_unit", short_of_memory)
    report = run_chain_on_files(chain(), [photos], tmp_path / "out", progress=False)
    assert sorted(p.name for p in report.written) == ["im0.png", "im2.png"]
    assert "not enough memory for its 10×12 pixels" in report.failed[str(photos / "im1.png")]


def test_a_file_uri_output_inside_an_input_folder_is_not_walked(tmp_path):
    pytest.importorskip("pyarrow", reason="pyarrow comes with the ray extra")
    from salplug.distributed._uri_folder import UriFolder
    from salplug.pipeline._runner import plan_run

    photos = _photos(tmp_path / "in")
    maps = photos / "maps"
    _photos(maps, 1)
    plan = plan_run(chain(), [photos], UriFolder(maps.as_uri()), overwrite=False, save_steps=False, manifest=False)
    assert sorted(item.key for item in plan.todo) == ["im1", "im2"]
    assert plan.report.skipped == [f"{maps.as_uri()}/im0.png"] and plan.report.failed == {}


def test_a_file_system_without_locks_runs_with_a_warning(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match="cannot lock .salplug-run.lock"):
        report = run_chain_on_files(chain(), [_photos(tmp_path / "in")], tmp_path / "out", progress=False)
    assert len(report.written) == 3


def test_an_output_that_is_a_file_is_one_line(tmp_path, capsys):
    spec = tmp_path / "c.yaml"
    spec.write_text(SPEC % 3)
    (tmp_path / "maps").write_text("not a folder")
    assert main(["run", "--chain", str(spec), str(_photos(tmp_path / "in")), "-o", str(tmp_path / "maps")]) == 2
    err = capsys.readouterr().err
    assert err == f"salplug: error: {tmp_path / 'maps'}: expected a folder for the maps, got a file\n"
