"""Evaluation under faults: a step failing on one image, typos in names, links that loop."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import salplug
from salplug import Refiner
from salplug.cli import main


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
    rows = {r["name"]: r for r in json.loads((out / "results.json").read_text())["methods"]}
    assert rows["clean → fragile"]["images"] == 4 and rows["clean"]["images"] == 4
    assert str(dataset / "images" / "k2.png") in rows["clean → fragile"]["failed"]


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


def test_a_partial_maps_folder_is_one_counted_line_and_a_marked_row(dataset, tmp_path, capsys):
    partial = tmp_path / "partial"
    partial.mkdir()
    for i in (0, 1):
        (partial / f"k{i}.png").write_bytes((dataset / "priors" / "dss" / f"k{i}.png").read_bytes())
    out = tmp_path / "res"
    assert main(["eval", "--dataset", str(dataset), "--priors", "dss", "--maps", f"mine={partial}", "-o", str(out),
                 "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == ["mine: 3 of 5 images have no map (-v lists them)"]
    rows = {line.split()[0]: line.split() for line in captured.out.splitlines()[1:3]}
    assert rows["mine"][1] == "2*" and rows["dss"][1] == "5"
    assert "* scored on fewer images" in captured.out
    assert main(["eval", "--dataset", str(dataset), "--maps", f"mine={partial}", "-v", "--no-progress"]) == 1
    assert sum("not scored:" in line and "no map" in line for line in capsys.readouterr().err.splitlines()) == 3


def test_curves_mark_max_f_and_name_it_in_the_legend(dataset, tmp_path):
    from salplug.metrics._evaluation import score_folder
    from salplug.data._datasets import SODDataset
    from salplug.metrics import _reports as reports

    data = SODDataset(dataset)
    results = [score_folder(data, dataset / "priors" / name, name) for name in ("clean", "dss")]
    results[1].count = 3
    captured = {}
    import matplotlib.axes

    original = matplotlib.axes.Axes.legend

    def legend(self, *args, **kwargs):
        captured.setdefault("labels", []).append([t for t in self.get_legend_handles_labels()[1]])
        captured.setdefault("styles", []).append([line.get_linestyle() for line in self.get_lines()])
        return original(self, *args, **kwargs)

    matplotlib.axes.Axes.legend = legend
    try:
        png = reports.plot_curves(results, tmp_path / "curves.png")
    finally:
        matplotlib.axes.Axes.legend = original
    assert png.stat().st_size > 0
    labels = captured["labels"][0]
    best = max(results[0].curves["fmeasure"])
    assert labels[0] == f"clean (max F {best:.3f}, 5 images)" and labels[1].startswith("dss (max F ")
    styles = [s for s in captured["styles"][0] if s != "None"]
    assert len(set(styles)) == 2, "methods need distinct dash patterns to read in grey"
