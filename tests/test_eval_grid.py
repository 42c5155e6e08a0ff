"""`salplug eval` as a grid of datasets × methods: pairing, outputs, cache, subsets and grid files."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from salplug.cli import main
from salplug.metrics import _evaluation as evaluation
from tests.pysod_reference import reference

DATASETS = {"alpha": [(20, 30), (24, 30), (30, 20), (22, 26)], "beta": [(18, 24), (26, 18), (20, 20)]}
METHODS = ("m0", "m1", "m2", "m3")
DATASET_METRICS = ("mae", "adp_f", "mean_f", "max_f", "sm", "adp_e", "mean_e", "max_e", "wfm", "adp_iou", "adp_dice")


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), array)


@pytest.fixture
def grid(tmp_path):
    """Two datasets (random photos, rectangle masks) and four methods' maps of each in results/<method>/<dataset>."""
    rng = np.random.default_rng(7)
    for name, sizes in DATASETS.items():
        for i, (h, w) in enumerate(sizes):
            mask = np.zeros((h, w), np.uint8)
            mask[h // 4 + i % 3 : 3 * h // 4, w // 5 : 4 * w // 5 - i] = 255
            _write(tmp_path / name / "images" / f"k{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            _write(tmp_path / name / "masks" / f"k{i}.png", mask)
            for j, method in enumerate(METHODS):
                noise = rng.integers(0, 40 + 50 * j, (h, w))
                saliency = np.clip(mask * (0.9 - 0.2 * j) + noise, 0, 255).astype(np.uint8)
                _write(tmp_path / "results" / method / name / f"k{i}.png", saliency)
    return tmp_path


def _argv(root, methods=METHODS, *extra):
    return ["eval", "--dataset", str(root / "alpha"), "--dataset", f"beta={root / 'beta'}",
            "--maps", *(f"{m}={root / 'results' / m / '{dataset}'}" for m in methods), "--no-progress", *extra]


def _gray(path):
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def test_one_call_scores_a_grid_and_every_score_equals_pysodmetrics(grid, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_argv(grid, METHODS, "-o", str(out), "--columns", "all")) == 0
    assert {"table.md", "table.tex", "results.csv", "per-image.csv", "results.json", "curves.png",
            "curves.pdf"} <= {p.name for p in out.iterdir()}
    payload = json.loads((out / "results.json").read_text())
    assert payload["command"].startswith("salplug eval --dataset") and payload["versions"]["salplug"]
    assert (payload["datasets"], payload["methods"]) == (["alpha", "beta"], list(METHODS))
    per_image = list(csv.DictReader((out / "per-image.csv").open(encoding="utf-8")))
    assert len(per_image) == len(METHODS) * sum(len(s) for s in DATASETS.values())
    for row in payload["results"]:
        keys = [f"k{i}" for i in range(len(DATASETS[row["dataset"]]))]
        maps = [_gray(grid / "results" / row["method"] / row["dataset"] / f"{k}.png") for k in keys]
        masks = [_gray(grid / row["dataset"] / "masks" / f"{k}.png") for k in keys]
        images, expected = reference(maps, masks)
        assert not row["partial"] and row["pairing"]["matched"] == len(keys)
        for metric in DATASET_METRICS:
            assert row["scores"][metric] == pytest.approx(float(expected[metric]), abs=1e-6), (row["method"], metric)
        for curve in ("precision", "recall", "fmeasure", "emeasure", "iou", "dice"):
            np.testing.assert_allclose(row["curves"][curve], expected[curve], rtol=0, atol=1e-6, err_msg=curve)
        mine = {r["Image"]: float(r["MAE↓"]) for r in per_image if (r["Dataset"], r["Method"]) == (row["dataset"], row["method"])}
        np.testing.assert_allclose([mine[k] for k in keys], images["mae"], atol=1e-6)
    table = (out / "table.md").read_text()
    assert table == capsys.readouterr().out
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines() if line.startswith("|")]
    assert [c for c in cells[0] if c] == ["Method", "alpha", "beta"] and [r[0] for r in cells[3:]] == list(METHODS)
    assert "**" in table
    assert "\\multicolumn{11}{c}{beta}" in (out / "table.tex").read_text()
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    assert [(r["Dataset"], r["Method"], r["Partial"]) for r in rows] == [
        (d, m, "false") for d in DATASETS for m in METHODS]


@pytest.fixture
def rough(grid):
    """Method m1's alpha folder lacking k0's map, with a map of no image and k1's map at another size."""
    folder = grid / "results" / "m1" / "alpha"
    (folder / "k0.png").unlink()
    _write(folder / "stray.png", np.zeros((20, 30), np.uint8))
    _write(folder / "k1.png", cv2.resize(_gray(folder / "k1.png"), (15, 13), interpolation=cv2.INTER_AREA))
    return folder


def test_missing_extra_and_resized_maps_are_named_before_scoring_and_marked_everywhere(grid, rough, tmp_path,
                                                                                      capsys, monkeypatch):
    added = []
    original = evaluation.Scorer.add
    monkeypatch.setattr(evaluation.Scorer, "add", lambda self, *a, **k: (added.append(1), original(self, *a, **k))[1])
    out = tmp_path / "out"
    assert main(_argv(grid, ("m0", "m1"), "-o", str(out), "--metrics", "mae,smeasure")) == 1
    err = capsys.readouterr().err.splitlines()
    first = err.index("alpha / m1: missing k0")
    assert err[first:first + 3] == ["alpha / m1: missing k0", f"alpha / m1: extra {rough / 'stray.png'}",
                                    "alpha / m1: resized k1"]
    assert "alpha    m1      3        1        1      1" in err
    assert "1 of 4 rows are missing images (marked †); --allow-partial accepts them" in err

    payload = json.loads((out / "results.json").read_text())
    row = next(r for r in payload["results"] if (r["dataset"], r["method"]) == ("alpha", "m1"))
    assert row["partial"] and row["pairing"] == {
        "matched": 3, "missing": 1, "extra": 1, "resized": 1, "missing_names": ["k0"],
        "extra_names": [str(rough / "stray.png")], "resized_names": ["k1"]}
    keys = ["k1", "k2", "k3"]
    masks = [_gray(grid / "alpha" / "masks" / f"{k}.png") for k in keys]
    maps = [cv2.resize(_gray(rough / f"{k}.png"), m.shape[::-1], interpolation=cv2.INTER_LINEAR)
            for k, m in zip(keys, masks)]
    assert row["scores"]["mae"] == pytest.approx(float(reference(maps, masks)[1]["mae"]), abs=1e-6)
    table = (out / "table.md").read_text()
    assert "m1 on alpha (3 of 4 images)" in table
    assert next(line for line in table.splitlines() if line.startswith("| m1 ")).count("†") == 2, "Sm and MAE on alpha"
    assert r"$^\dagger$" in (out / "table.tex").read_text()
    partial = {(r["Dataset"], r["Method"]): r["Partial"] for r in csv.DictReader((out / "results.csv").open())}
    assert partial[("alpha", "m1")] == "true" and partial[("beta", "m1")] == "false"
    scored = {r["Image"] for r in csv.DictReader((out / "per-image.csv").open(encoding="utf-8"))
              if (r["Dataset"], r["Method"]) == ("alpha", "m1")}
    assert scored == set(keys)

    assert main(_argv(grid, ("m0", "m1"), "--metrics", "mae,smeasure", "--allow-partial")) == 0


def test_adding_a_method_to_a_grid_scores_only_that_method(grid, tmp_path, monkeypatch, capsys):
    scored = []
    original = evaluation.Scorer.add

    def add(self, maps, masks, keys=None):
        scored.append(self.result.name)
        return original(self, maps, masks, keys)

    monkeypatch.setattr(evaluation.Scorer, "add", add)
    out = tmp_path / "out"
    assert main(_argv(grid, METHODS[:3], "-o", str(out), "--metrics", "mae,smeasure")) == 0
    assert set(scored) == set(METHODS[:3])
    first = json.loads((out / "results.json").read_text())["results"]
    scored.clear()
    assert main(_argv(grid, METHODS, "-o", str(out), "--metrics", "mae,smeasure")) == 0
    assert set(scored) == {"m3"}
    again = json.loads((out / "results.json").read_text())["results"]
    assert [r["scores"] for r in again[:3]] == [r["scores"] for r in first[:3]]
    scored.clear()
    _write(grid / "results" / "m0" / "beta" / "k0.png", np.zeros((18, 24), np.uint8))
    assert main(_argv(grid, METHODS, "-o", str(out), "--metrics", "mae,smeasure")) == 0
    assert set(scored) == {"m0"}, "only the cell whose map changed is scored again"
    scored.clear()
    assert main(_argv(grid, METHODS, "-o", str(out), "--metrics", "mae", "--no-cache")) == 0
    assert set(scored) == set(METHODS)


def test_subset_file_scores_only_the_listed_stems(grid, tmp_path, capsys):
    subset = tmp_path / "held-out.txt"
    subset.write_text("# held out\nk0\n\nk2  # the tall one\n")
    out = tmp_path / "out"
    assert main(_argv(grid, ("m0",), "--subset", str(subset), "-o", str(out), "--metrics", "mae")) == 0
    rows = list(csv.DictReader((out / "per-image.csv").open(encoding="utf-8")))
    assert sorted((r["Dataset"], r["Image"]) for r in rows) == [("alpha", "k0"), ("alpha", "k2"), ("beta", "k0"),
                                                                ("beta", "k2")]
    subset.write_text("k0\nk9\n")
    capsys.readouterr()
    assert main(_argv(grid, ("m0",), "--subset", str(subset))) == 2
    assert "got 1 that no dataset holds: k9" in capsys.readouterr().err


def test_a_pattern_without_dataset_and_repeated_names_are_refused(grid, capsys):
    argv = ["eval", "--dataset", str(grid / "alpha"), "--dataset", str(grid / "beta"), "--no-progress"]
    assert main([*argv, "--maps", f"m0={grid / 'results' / 'm0' / 'alpha'}"]) == 2
    assert "expected {dataset} in the pattern with several datasets" in capsys.readouterr().err
    assert main(["eval", "--dataset", str(grid / "alpha"), "--dataset", str(grid / "alpha"), "--maps",
                 f"m0={grid / 'results' / 'm0' / '{dataset}'}"]) == 2
    assert "expected distinct names, got 'alpha' twice" in capsys.readouterr().err


def test_a_grid_file_names_folders_prefixes_and_methods(grid, tmp_path, capsys):
    pysod = tmp_path / "pysod"
    for i in range(len(DATASETS["beta"])):
        _write(pysod / "Image" / f"k{i}.png", cv2.imread(str(grid / "beta" / "images" / f"k{i}.png")))
        _write(pysod / "Mask" / f"k{i}.png", _gray(grid / "beta" / "masks" / f"k{i}.png"))
        _write(tmp_path / "sal" / f"k{i}_m2.png", _gray(grid / "results" / "m2" / "beta" / f"k{i}.png"))
    spec = tmp_path / "grid.yaml"
    spec.write_text(
        "datasets:\n"
        f"  alpha: {grid / 'alpha'}\n"
        "  beta: {images: pysod/Image, masks: pysod/Mask, map_suffix: _m2}\n"
        "methods:\n"
        f"  m0: {grid / 'results' / 'm0'}/{{dataset}}\n"
        f"  m2: {{alpha: {grid / 'results' / 'm2' / 'alpha'}, beta: sal}}\n"
    )
    out = tmp_path / "out"
    assert main(["eval", "--grid", str(spec), "-o", str(out), "--metrics", "mae", "--no-progress"]) == 1
    rows = {(r["dataset"], r["method"]): r for r in json.loads((out / "results.json").read_text())["results"]}
    assert rows["beta", "m0"]["partial"] and rows["beta", "m0"]["pairing"]["missing"] == 3, "m0 names k0_m2 extra"
    assert not rows["beta", "m2"]["partial"] and not rows["alpha", "m2"]["partial"]
    direct = tmp_path / "direct"
    assert main(_argv(grid, ("m2",), "-o", str(direct), "--metrics", "mae")) == 0
    expected = {(r["dataset"], r["method"]): r for r in json.loads((direct / "results.json").read_text())["results"]}
    assert rows["beta", "m2"]["scores"] == expected["beta", "m2"]["scores"]

    spec.write_text("datasets:\n  alpha: {images: a, mask: b}\n")
    capsys.readouterr()
    assert main(["eval", "--grid", str(spec)]) == 2
    assert f"grid file {spec}: field 'datasets.alpha" in capsys.readouterr().err


def test_schema_grid_prints_the_grid_files_json_schema(capsys):
    assert main(["schema", "grid"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "salplug evaluation grid" and {"datasets", "methods", "chains"} <= schema["properties"].keys()
