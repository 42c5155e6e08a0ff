"""Paired comparison of two methods: mean per-image difference and its seeded bootstrap interval."""

from __future__ import annotations

import json
import math
import shutil

import cv2
import numpy as np
import pytest

from salplug.cli import main
from salplug.metrics import MethodScores, compare_methods, paired_difference


def test_equal_differences_give_that_difference_and_a_point_interval():
    d = paired_difference({"x": 0.5, "y": 0.7, "z": 0.1}, {"x": 0.3, "y": 0.5, "z": -0.1})
    assert (d.mean, d.low, d.high, d.count) == pytest.approx((0.2, 0.2, 0.2, 3), abs=1e-12)


def test_two_images_differing_by_0_and_1_span_the_whole_range():
    # resampled means are 0, 0.5 or 1 with chances 1/4, 1/2, 1/4: the 2.5% and 97.5% points are 0 and 1
    d = paired_difference({"x": 0.0, "y": 1.0}, {"x": 0.0, "y": 0.0})
    assert (d.mean, d.low, d.high, d.count, d.level) == (0.5, 0.0, 1.0, 2, 0.95)


def test_the_interval_matches_the_normal_one_and_repeats_with_its_seed():
    # 100 differences, half 0 and half 1: mean 0.5, standard error 0.5 / 10, so about 0.5 ± 1.96 × 0.05
    a = {f"k{i}": float(i % 2) for i in range(100)}
    b = dict.fromkeys(a, 0.0)
    d = paired_difference(a, b)
    assert d.mean == 0.5 and d.low == pytest.approx(0.402, abs=0.02) and d.high == pytest.approx(0.598, abs=0.02)
    assert paired_difference(a, b) == d
    assert paired_difference(a, b, seed=1) != d


def test_only_images_both_scored_and_not_nan_are_paired():
    d = paired_difference({"x": 1.0, "y": 2.0, "z": math.nan}, {"x": 0.0, "z": 1.0, "w": 5.0})
    assert (d.mean, d.count) == (1.0, 1)
    with pytest.raises(ValueError, match=r"got none in common \(1 images in A, 1 in B"):
        paired_difference({"x": 1.0}, {"y": 1.0})


def test_compare_methods_leaves_out_scores_that_are_not_per_image_means():
    def method(name, mae, max_f):
        return MethodScores(name, scores={"mae": float(np.mean(mae)), "max_f": 0.9}, count=2,
                            per_image={"mae": dict(zip("xy", mae)), "max_f": dict(zip("xy", max_f))})

    differences = compare_methods(method("A", [0.1, 0.3], [0.8, 0.9]), method("B", [0.2, 0.2], [0.7, 0.6]))
    assert list(differences) == ["mae"]
    assert differences["mae"].mean == pytest.approx(0.0, abs=1e-12)
    assert (differences["mae"].low, differences["mae"].high) == pytest.approx((-0.1, 0.1), abs=1e-12)


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "set"
    for sub in ("images", "masks", "priors/p"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        mask = np.zeros((12, 16), np.uint8)
        mask[2 + i : 9, 3 : 12 - i] = 255
        prior = np.clip(mask * 0.5 + rng.integers(0, 200, mask.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"k{i}.png"), np.full((12, 16, 3), 100, np.uint8))
        cv2.imwrite(str(root / "masks" / f"k{i}.png"), mask)
        cv2.imwrite(str(root / "priors" / "p" / f"k{i}.png"), prior)
    return root


def test_cli_compare_prints_one_line_per_metric_and_writes_it(dataset, tmp_path, capsys):
    same = tmp_path / "same"
    shutil.copytree(dataset / "priors" / "p", same)
    out = tmp_path / "out"
    assert main(["eval", "--dataset", str(dataset), "--priors", "p", "--maps", f"same={same}", "--metrics",
                 "mae,smeasure,fmeasure", "--compare", "same", "p", "-o", str(out), "--no-progress"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("same − p")]
    assert lines == [f"same − p  {label}: +0.0000, 95% interval [+0.0000, +0.0000] over 4 images"
                     for label in ("MAE", "adpFβ", "meanFβ", "Sm")]
    (comparison,) = json.loads((out / "results.json").read_text())["comparisons"]
    assert (comparison["dataset"], comparison["a"], comparison["b"]) == ("set", "same", "p")
    assert comparison["differences"]["mae"] == {"mean": 0.0, "low": 0.0, "high": 0.0, "count": 4, "level": 0.95}


def test_cli_compare_checks_its_names_before_scoring(dataset, tmp_path, capsys):
    spec = tmp_path / "center.yaml"
    spec.write_text("steps:\n  - {kind: prior, component: center}\n")
    argv = ["eval", "--dataset", str(dataset), "--priors", "p", "--chain", str(spec), "--score-input", "--no-progress"]
    assert main([*argv, "--compare", "p → centre", "p"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == ("salplug: error: --compare p → centre: expected one of the methods scored here "
                                    "(p, p → center), got 'p → centre'; did you mean 'p → center'?")
    assert main([*argv, "--compare", "p", "p"]) == 2
    assert "expected two different methods, got 'p' twice" in capsys.readouterr().err
