"""Directory runs: input collection, size batching, per-file failures, resume and step maps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from salplug import Chain, PriorProvider
from salplug.pipeline import _runner as runner_module
from salplug.pipeline._batching import PENDING_BATCHES
from salplug.builtins.postprocessors import Median
from salplug.builtins.priors import CenterPrior, GivenMaps
from salplug.data._inputs import collect_inputs
from salplug.pipeline._runner import run_chain_on_files


class RecordingPrior(PriorProvider):
    """Constant map that records the keys of every batch it is called with."""

    name = "recording"

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.batches: list[list[str]] = []

    def forward(self, image, keys=None):
        self.batches.append(list(keys))
        return torch.full_like(image[:, :1], 0.5)


def _image(path: Path, height: int, width: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)
    return path


def _size(path: Path) -> tuple[int, int]:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape


@pytest.fixture
def folder(tmp_path):
    """Two sizes, a nested folder and one corrupt JPEG."""
    root = tmp_path / "images"
    _image(root / "a.jpg", 16, 20, 1)
    _image(root / "b.png", 16, 20, 2)
    _image(root / "c.png", 12, 8, 3)
    _image(root / "nested" / "d.jpg", 16, 20, 4)
    (root / "broken.jpg").write_text("this is not a JPEG")
    return root


SIZES = {"a": (16, 20), "b": (16, 20), "c": (12, 8), "nested/d": (16, 20)}


def test_collect_inputs_walks_folders_and_keys_by_relative_path(tmp_path, folder):
    _image(folder / ".hidden.png", 4, 4)
    _image(folder / ".cache" / "e.png", 4, 4)
    _image(folder / "UPPER.JPG", 4, 4)
    (folder / "notes.txt").write_text("not an image")
    single = _image(tmp_path / "elsewhere" / "single.bmp", 4, 4)

    items, failed = collect_inputs([folder, single])

    assert [item.key for item in items] == ["UPPER", "a", "b", "broken", "c", "nested/d", "single"]
    assert items[-1].path == single
    assert failed == {}


def test_collect_inputs_reports_missing_paths_and_empty_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    items, failed = collect_inputs([tmp_path / "missing.jpg", tmp_path / "empty"])
    assert items == []
    assert failed[str(tmp_path / "missing.jpg")] == "no such file or folder"
    assert "no image files" in failed[str(tmp_path / "empty")]


def test_collect_inputs_fails_every_file_sharing_a_key_and_counts_a_file_once(tmp_path):
    jpg = _image(tmp_path / "in" / "same.jpg", 4, 4)
    png = _image(tmp_path / "in" / "same.png", 4, 4)
    other = _image(tmp_path / "in" / "other.png", 4, 4)

    items, failed = collect_inputs([tmp_path / "in", other])

    assert [item.path for item in items] == [other]
    assert set(failed) == {str(jpg), str(png)}
    assert str(png) in failed[str(jpg)] and "'same'" in failed[str(jpg)]


def test_run_writes_every_readable_image_and_reports_the_corrupt_one(tmp_path, folder):
    prior = RecordingPrior()
    out = tmp_path / "out"

    report = run_chain_on_files(Chain([prior, Median(size=3)]), [folder], out, batch_size=2, progress=False)

    assert list(report.failed) == [str(folder / "broken.jpg")]
    assert "not a decodable image" in report.failed[str(folder / "broken.jpg")]
    assert sorted(report.written) == sorted(out / f"{key}.png" for key in SIZES)
    for key, size in SIZES.items():
        assert _size(out / f"{key}.png") == size
    assert sorted(map(sorted, prior.batches)) == [["a", "b"], ["c"], ["nested/d"]]
    assert "4 written" in report.summary() and "1 failed" in report.summary()


def test_rerun_skips_finished_maps_and_overwrite_recomputes_them(tmp_path, folder):
    chain = Chain([CenterPrior()])
    out = tmp_path / "out"
    run_chain_on_files(chain, [folder], out, progress=False)
    assert cv2.imwrite(str(out / "a.png"), np.full((1, 1), 7, np.uint8))
    sentinel = (out / "a.png").read_bytes()

    again = run_chain_on_files(chain, [folder], out, progress=False)
    assert again.written == []
    assert sorted(again.skipped) == sorted(out / f"{key}.png" for key in SIZES)
    assert (out / "a.png").read_bytes() == sentinel

    forced = run_chain_on_files(chain, [folder], out, overwrite=True, progress=False)
    assert forced.skipped == []
    assert len(forced.written) == len(SIZES)
    assert _size(out / "a.png") == SIZES["a"]


def test_given_prior_with_a_missing_map_fails_only_that_image(tmp_path):
    images, maps = tmp_path / "images", tmp_path / "maps"
    for i, key in enumerate("pqr"):
        _image(images / f"{key}.jpg", 6, 9, i)
    maps.mkdir()
    for key, value in (("p", 255), ("r", 51)):
        cv2.imwrite(str(maps / f"{key}.png"), np.full((6, 9), value, np.uint8))
    out = tmp_path / "out"

    report = run_chain_on_files(Chain([GivenMaps(root=maps)]), [images], out, batch_size=8, progress=False)

    assert list(report.failed) == [str(images / "q.jpg")]
    assert "no map for image 'q'" in report.failed[str(images / "q.jpg")]
    assert cv2.imread(str(out / "p.png"), cv2.IMREAD_UNCHANGED).min() == 255
    assert cv2.imread(str(out / "r.png"), cv2.IMREAD_UNCHANGED).max() == 51
    assert not (out / "q.png").exists()


def test_save_steps_writes_each_steps_map_and_resumes_when_one_is_missing(tmp_path, folder):
    chain = Chain([("centre", CenterPrior(sigma=0.1)), ("smooth", Median(size=3))])
    out = tmp_path / "out"

    run_chain_on_files(chain, [folder], out, save_steps=True, progress=False)

    for step in ("centre", "smooth"):
        for key, size in SIZES.items():
            assert _size(out / "steps" / step / f"{key}.png") == size
    np.testing.assert_array_equal(
        cv2.imread(str(out / "steps" / "smooth" / "c.png")), cv2.imread(str(out / "c.png"))
    )
    (out / "steps" / "centre" / "c.png").unlink()
    again = run_chain_on_files(chain, [folder], out, save_steps=True, progress=False)
    assert again.written == [out / "c.png"]
    assert (out / "steps" / "centre" / "c.png").is_file()


def test_images_of_many_sizes_do_not_pile_up_in_memory(tmp_path, monkeypatch):
    for i in range(12):
        _image(tmp_path / "in" / f"{i:02d}.png", 4 + i, 4)
    reads = []
    read_image = runner_module.read_image
    monkeypatch.setattr(runner_module, "read_image", lambda path, *limit: reads.append(path) or read_image(path, *limit))
    seen_at: list[int] = []

    class Probe(RecordingPrior):
        def forward(self, image, keys=None):
            seen_at.append(len(reads))
            return super().forward(image, keys)

    report = run_chain_on_files(Chain([Probe()]), [tmp_path / "in"], tmp_path / "out", batch_size=2, progress=False)

    assert len(report.written) == 12
    assert seen_at[0] <= PENDING_BATCHES * 2 < 12


def test_outputs_inside_an_input_folder_are_not_read_back(tmp_path, folder):
    out = folder / "maps"
    first = run_chain_on_files(Chain([CenterPrior()]), [folder], out, progress=False)
    second = run_chain_on_files(Chain([CenterPrior()]), [folder], out, progress=False)
    assert len(first.written) == len(SIZES)
    assert len(second.skipped) == len(SIZES) and second.written == []
    assert not (out / "maps").exists()


def test_a_map_never_replaces_its_own_image(tmp_path):
    image = _image(tmp_path / "x.png", 5, 5)
    before = image.read_bytes()
    report = run_chain_on_files(Chain([CenterPrior()]), [tmp_path], tmp_path, overwrite=True, progress=False)
    assert "overwrite the image itself" in report.failed[str(image)]
    assert image.read_bytes() == before
