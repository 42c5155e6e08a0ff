"""Evaluation under faults: a step failing on one image, typos in names, links that loop."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

import salplug
from salplug import Refiner
from salplug.cli import main
from salplug.data import SODDataset
from salplug.metrics import _evaluation as evaluation
from salplug.metrics._evaluation import score_chain


class FailsOnDark(Refiner):
    """Raises on images darker than 0.2 on average: a step that breaks on one image of the set."""

    name = "fails-on-dark"

    def forward(self, image, saliency):
        if bool((image.mean(dim=(1, 2, 3)) < 0.2).any()):
            raise RuntimeError("cannot handle dark images")
        return saliency


class Plugin:
    @salplug.hookimpl
    def salplug_register_refiners(self, register):
        register(FailsOnDark)


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "set"
    for sub in ("images", "masks", "priors/clean", "priors/dss"):
        (root / sub).mkdir(parents=True)
    for i in range(5):
        image = np.full((12, 16, 3), 10 if i == 2 else 200, np.uint8)
        mask = np.zeros((12, 16), np.uint8)
        mask[3:9, 4:12] = 255
        cv2.imwrite(str(root / "images" / f"k{i}.png"), image)
        cv2.imwrite(str(root / "masks" / f"k{i}.png"), mask)
        for prior in ("clean", "dss"):
            cv2.imwrite(str(root / "priors" / prior / f"k{i}.png"), cv2.GaussianBlur(mask, (5, 5), 0))
    return root


@pytest.fixture
def failing(tmp_path):
    try:
        salplug.register_plugin(Plugin(), name="failing")
        spec = tmp_path / "fragile.yaml"
        spec.write_text("steps:\n  - {kind: prior, component: center}\n  - {kind: refiner, component: fails-on-dark}\n")
        yield spec
    finally:
        salplug.reload_plugins()


def test_a_step_failing_on_one_image_costs_only_that_image(dataset, failing, tmp_path, capsys):
    out = tmp_path / "results"
    code = main(["eval", "--dataset", str(dataset), "--chain", str(failing), "--priors", "clean", "--score-input",
                 "--batch-size", "4", "-o", str(out), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"not scored: {dataset / 'images' / 'k2.png'}: step 'fails-on-dark' (refiner 'fails-on-dark') failed" in err
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    for name in ("clean → fragile", "clean"):
        assert rows[name]["partial"] and rows[name]["pairing"]["missing_names"] == ["k2"], name


@pytest.mark.parametrize(("argv", "message"), [
    (["--priors", "clean", "dsss"], "--priors dsss: .* has no prior folder 'dsss' (priors there: clean, dss); did you mean 'dss'?"),
    (["--maps", "mine=PRIORS/clean", "other=nowhere"], "--maps other: expected a folder of maps at nowhere, got nothing"),
    (["--priors", "clean", "--metrics", "mae,maxf"], "unknown metric 'maxf'"),
])
def test_every_name_is_checked_before_any_scoring(dataset, tmp_path, capsys, argv, message):
    argv = [a.replace("PRIORS", str(dataset / "priors")) for a in argv]
    out = tmp_path / "results"
    assert main(["eval", "--dataset", str(dataset), *argv, "-o", str(out), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not out.exists()
    import re

    assert re.search(re.escape(message).replace(r"\.\*", ".*"), captured.err), captured.err


def test_an_image_that_is_a_looping_link_is_reported(dataset, capsys):
    (dataset / "images" / "loop.png").symlink_to(dataset / "images" / "loop.png")
    assert main(["eval", "--dataset", str(dataset), "--priors", "clean", "--no-progress"]) == 1
    assert f"not scored: {dataset / 'images' / 'loop.png'}: a symbolic link that loops" in capsys.readouterr().err


def test_a_partial_maps_folder_is_named_before_scoring_and_a_marked_row(dataset, tmp_path, capsys):
    partial = tmp_path / "partial"
    partial.mkdir()
    for i in (0, 1):
        (partial / f"k{i}.png").write_bytes((dataset / "priors" / "dss" / f"k{i}.png").read_bytes())
    out = tmp_path / "res"
    assert main(["eval", "--dataset", str(dataset), "--priors", "dss", "--maps", f"mine={partial}", "-o", str(out),
                 "--no-progress"]) == 1
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert ["set      mine    2        3        0      0", "set      dss     5        0        0      0"] == err[2:4]
    assert [line for line in err if line.startswith("set / mine")] == [f"set / mine: missing k{i}" for i in (2, 3, 4)]
    mine = next(line for line in captured.out.splitlines() if line.startswith("| mine "))
    assert "†" in mine and "mine on set (2 of 5 images)" in captured.out


def _smoothing_chain():
    return salplug.Chain([salplug.build("prior", "center"), salplug.build("postprocessor", "median", size=3)])


def _six_images(dataset):
    """A sixth image with its own mask, so batches of 4 split the set 4 + 2 and images score differently."""
    mask = np.zeros((12, 16), np.uint8)
    mask[2:6, 2:14] = 255
    cv2.imwrite(str(dataset / "images" / "k5.png"), np.full((12, 16, 3), 120, np.uint8))
    cv2.imwrite(str(dataset / "masks" / "k5.png"), mask)
    for prior in ("clean", "dss"):
        cv2.imwrite(str(dataset / "priors" / prior / "k5.png"), cv2.GaussianBlur(np.roll(mask, 3, axis=1), (5, 5), 0))
    return SODDataset(dataset)


def _same_scores(got, expected):
    assert (got.name, got.count, got.scores, got.curves) == (expected.name, expected.count, expected.scores,
                                                             expected.curves)


def test_a_map_that_cannot_be_written_is_scored_once_and_reported(dataset, tmp_path, monkeypatch):
    data = _six_images(dataset)
    expected = score_chain(data, _smoothing_chain(), "smooth", priors=["clean"], score_input=True, batch_size=4)
    original = evaluation.write_map

    def write_map(path, saliency):
        if path.stem == "k3":
            raise OSError(28, "No space left on device")
        return original(path, saliency)

    monkeypatch.setattr(evaluation, "write_map", write_map)
    saved = tmp_path / "saved"
    got = score_chain(data, _smoothing_chain(), "smooth", priors=["clean"], score_input=True, batch_size=4,
                      save_maps=saved)
    for result, reference in zip(got, expected, strict=True):
        _same_scores(result, reference)
        assert not result.failed
    assert got[1].unsaved == {str(saved / "clean" / "k3.png"): "OSError: [Errno 28] No space left on device"}
    assert sorted(p.stem for p in (saved / "clean").iterdir()) == ["k0", "k1", "k2", "k4", "k5"]


def test_a_metric_failing_mid_batch_counts_no_image_twice(dataset, monkeypatch):
    data = _six_images(dataset)
    chain = _smoothing_chain()
    expected = score_chain(data, chain, "smooth", priors=["clean"], score_input=True, batch_size=5)
    from salplug.builtins.metrics import SMeasure

    original = SMeasure.update

    def update(self, saliency, mask):
        if saliency.shape[0] > 1:
            raise RuntimeError("cannot score a batch")
        return original(self, saliency, mask)

    monkeypatch.setattr(SMeasure, "update", update)
    for result, reference in zip(score_chain(data, chain, "smooth", priors=["clean"], score_input=True, batch_size=5),
                                 expected, strict=True):
        assert result.count == 6
        assert result.scores == pytest.approx(reference.scores, abs=1e-12)


def test_an_unwritable_save_folder_still_scores_every_image_once(dataset, tmp_path, capsys):
    data = _six_images(dataset)
    spec = tmp_path / "smooth.yaml"
    spec.write_text("steps:\n  - {kind: prior, component: center}\n"
                    "  - {kind: postprocessor, component: median, config: {size: 3}}\n")
    saved = tmp_path / "saved"
    (saved / "set").mkdir(parents=True)
    (saved / "set" / "clean").write_text("a file where the folder of maps goes")
    out = tmp_path / "results"
    argv = ["eval", "--dataset", str(dataset), "--chain", str(spec), "--priors", "clean", "--batch-size", "4",
            "--no-progress"]
    assert main([*argv, "--save-maps", str(saved), "-o", str(out)]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "not saved" in line]
    assert len(err) == 1 and err[0].startswith(f"set / clean → smooth: 6 of 6 maps not saved in {saved / 'set' / 'clean'}: ")
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    expected = score_chain(data, _smoothing_chain(), "smooth", priors=["clean"], batch_size=4)[0]
    assert rows["clean → smooth"]["pairing"]["matched"] == 6 and not rows["clean → smooth"]["partial"]
    assert rows["clean → smooth"]["scores"] == expected.scores


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_save_folder_still_scores_every_image_once(dataset, tmp_path):
    data = _six_images(dataset)
    saved = tmp_path / "saved"
    (saved / "clean").mkdir(parents=True)
    (saved / "clean").chmod(0o555)
    try:
        got = score_chain(data, _smoothing_chain(), "smooth", priors=["clean"], batch_size=4, save_maps=saved)[0]
    finally:
        (saved / "clean").chmod(0o755)
    _same_scores(got, score_chain(data, _smoothing_chain(), "smooth", priors=["clean"], batch_size=4)[0])
    assert len(got.unsaved) == 6 and not got.failed
