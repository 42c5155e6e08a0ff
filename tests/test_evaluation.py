"""`salplug eval` and the scoring harness on small synthetic datasets."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

import salplug
from salplug.cli import main
from salplug.data._datasets import DatasetError, SODDataset
from salplug.metrics._evaluation import score_chain, score_folder
from salplug.components import Refiner
from tests.shared_data import sod_dev

SIZES = {"a": (20, 30), "b": (20, 30), "c": (30, 20)}


class Invert(Refiner):
    """Test refiner: 1 - map, so before and after differ."""

    name = "invert"

    def forward(self, image, saliency):
        return 1 - saliency


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "set"
    for key, (h, w) in SIZES.items():
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
        prior = np.clip(mask * 0.7 + rng.integers(0, 60, (h, w)), 0, 255).astype(np.uint8)
        for folder, array in (("images", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)), ("masks", mask), ("priors/p", prior)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / folder / f"{key}.png"), array)
    return root


def _reference_mae(root, folder):
    values = []
    for key in SIZES:
        pred = cv2.imread(str(folder / f"{key}.png"), cv2.IMREAD_GRAYSCALE) / 255
        if pred.max() != pred.min():
            pred = (pred - pred.min()) / (pred.max() - pred.min())
        gt = cv2.imread(str(root / "masks" / f"{key}.png"), cv2.IMREAD_GRAYSCALE) > 128
        values.append(np.abs(pred - gt).mean())
    return float(np.mean(values))


def test_dataset_pairs_by_stem_and_reports_mismatches(dataset):
    cv2.imwrite(str(dataset / "images" / "lonely.jpg"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(dataset / "masks" / "orphan.png"), np.zeros((4, 4), np.uint8))
    cv2.imwrite(str(dataset / "masks" / "a.jpg"), np.zeros((4, 4), np.uint8))
    data = SODDataset(dataset)
    assert data.keys == ["b", "c"]
    assert data.problems[str(dataset / "images" / "lonely.jpg")] == "image without a mask"
    assert data.problems[str(dataset / "masks" / "orphan.png")] == "mask without an image"
    assert "stem 'a' is shared with" in data.problems[str(dataset / "masks" / "a.jpg")]
    assert data.prior_names() == ["p"]
    with pytest.raises(DatasetError, match=r"no prior folder .*priors/q \(priors here: p\)"):
        data.prior_folder("q")
    with pytest.raises(DatasetError, match="expected a folder .*masks"):
        SODDataset(dataset / "images")


def test_score_folder_matches_the_reference_protocol(dataset):
    result = score_folder(SODDataset(dataset), dataset / "priors" / "p", "p")
    assert result.count == 3 and not result.failed
    assert result.scores["mae"] == pytest.approx(_reference_mae(dataset, dataset / "priors" / "p"), abs=1e-12)
    assert {"adp_f", "max_f", "sm", "wfm"} <= result.scores.keys()
    assert len(result.curves["precision"]) == 256


def test_bad_maps_are_reported_by_file_and_the_rest_scored(dataset, tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    cv2.imwrite(str(maps / "a.png"), np.zeros((20, 30), np.uint8))
    cv2.imwrite(str(maps / "b.png"), np.zeros((21, 30), np.uint8))
    (maps / "c.png").write_text("not an image")
    result = score_folder(SODDataset(dataset), maps, "broken")
    assert result.count == 2, "a map of another size is resized to its mask, as PySODEvalToolkit does"
    assert list(result.failed) == [str(maps / "c.png")]
    assert "not a decodable image" in result.failed[str(maps / "c.png")]
    (maps / "c.png").unlink()
    assert score_folder(SODDataset(dataset), maps, "x").failed[str(maps / "c")] == "no map for this image"


def test_chain_scores_equal_the_scores_of_the_maps_it_writes(dataset, tmp_path):
    chain = salplug.Chain([salplug.build("prior", "center"), Invert()])
    before, after = score_chain(
        SODDataset(dataset), chain, "inv", priors=["p"], score_input=True, save_maps=tmp_path / "saved", batch_size=2
    )
    assert (before.name, after.name) == ("p", "p → inv")
    assert before.scores == score_folder(SODDataset(dataset), dataset / "priors" / "p", "p").scores
    written = score_folder(SODDataset(dataset), tmp_path / "saved" / "p", "written")
    assert after.scores == written.scores
    assert after.scores["mae"] > before.scores["mae"]


def test_chain_with_its_own_prior_scores_the_first_step(dataset):
    chain = salplug.Chain([salplug.build("prior", "given", root=dataset / "priors" / "p"), Invert()])
    given, inverted = score_chain(SODDataset(dataset), chain, "own", score_input=True)
    assert given.name == "given" and inverted.name == "own"
    assert given.scores == score_folder(SODDataset(dataset), dataset / "priors" / "p", "p").scores


def test_cli_eval_writes_table_json_csv_and_plot(dataset, tmp_path, capsys):
    out = tmp_path / "report"
    spec = tmp_path / "center.yaml"
    spec.write_text("steps:\n  - {kind: prior, component: center}\n  - {kind: postprocessor, component: normalize}\n")
    code = main([
        "eval", "--dataset", str(dataset), "--priors", "all", "--maps", f"copy={dataset / 'priors' / 'p'}",
        "--out", str(out), "--no-progress",
    ])
    assert code == 0
    table = capsys.readouterr().out
    assert "| Method |" in table and "MAE↓" in table and "\n| p " in table
    payload = json.loads((out / "results.json").read_text())
    assert payload["command"].startswith("salplug eval --dataset")
    assert [(r["dataset"], r["method"]) for r in payload["results"]] == [("set", "copy"), ("set", "p")]
    assert payload["results"][0]["scores"] == payload["results"][1]["scores"]
    assert payload["results"][1]["scores"]["mae"] == pytest.approx(_reference_mae(dataset, dataset / "priors" / "p"),
                                                                   abs=1e-12)
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    assert float(rows[1]["MAE↓"]) == round(_reference_mae(dataset, dataset / "priors" / "p"), 3)
    assert cv2.imread(str(out / "curves.png")).shape[0] > 100

    assert main(["eval", "--dataset", str(dataset), "--chain", str(spec), "--no-progress"]) == 0
    assert "| center " in capsys.readouterr().out


def test_cli_eval_exit_codes(dataset, tmp_path, capsys):
    (dataset / "priors" / "p" / "c.png").unlink()
    assert main(["eval", "--dataset", str(dataset), "--priors", "p", "--no-progress"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert "set / p: missing c" in err and "1 of 1 rows are missing images (marked †); --allow-partial accepts them" in err
    assert main(["eval", "--dataset", str(dataset), "--priors", "p", "--no-progress", "--allow-partial"]) == 0
    capsys.readouterr()
    assert main(["eval", "--dataset", str(dataset), "--no-progress"]) == 2
    assert "expected something to score" in capsys.readouterr().err
    assert main(["eval", "--dataset", str(tmp_path / "nowhere"), "--priors", "p"]) == 2
    assert main(["eval", "--dataset", str(dataset), "--maps", "noequals"]) == 2
    assert "NAME=PATTERN" in capsys.readouterr().err


README_FIGURES = {  # ../shared/data/README.md: MAE and adaptive F of the published detectors' maps
    "amulet": (0.1366, 0.7770),
    "dss": (0.1236, 0.8037),
    "picanet": (0.1001, 0.8073),
}


@pytest.mark.data
def test_salplug_eval_reproduces_the_data_readme_on_sod_dev(tmp_path, capsys):
    root = sod_dev()
    code = main(["eval", "--dataset", str(root), "--priors", *README_FIGURES, "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    methods = {r["method"]: r for r in json.loads((tmp_path / "results.json").read_text())["results"]}
    for prior, (mae, adaptive_f) in README_FIGURES.items():
        assert methods[prior]["pairing"]["matched"] == 190 and not methods[prior]["partial"]
        assert round(methods[prior]["scores"]["mae"], 4) == mae
        assert round(methods[prior]["scores"]["adp_f"], 4) == adaptive_f
    assert "amulet" in capsys.readouterr().out


def test_cli_eval_subset_scores_only_the_listed_images(dataset, tmp_path, capsys):
    listed = tmp_path / "subset.txt"
    listed.write_text("b  # the only one\n")
    assert SODDataset(dataset, frozenset({"b"})).keys == ["b"]
    assert main(["eval", "--dataset", str(dataset), "--priors", "p", "--subset", str(listed), "--no-progress"]) == 0
    assert "set      p       1        0        0      0" in capsys.readouterr().err.splitlines()


def test_masks_stored_as_0_and_1_score_as_binary_with_one_warning(dataset, tmp_path, capsys):
    expected = score_folder(SODDataset(dataset), dataset / "priors" / "p", "p")
    for path in (dataset / "masks").iterdir():
        cv2.imwrite(str(path), (cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 128).astype(np.uint8))
    with pytest.warns(UserWarning) as caught:
        got = score_folder(SODDataset(dataset), dataset / "priors" / "p", "p")
    assert (got.count, got.scores) == (3, expected.scores)
    assert [str(w.message) for w in caught] == [
        f"{dataset / 'masks' / 'a.png'}: maximum value 1, read as a 0/1 mask (1 = salient), as PySODEvalToolkit "
        f"datasets often store them; other masks in {dataset / 'masks'} with maximum 1 are read the same way"
    ]
    assert main(["eval", "--dataset", str(dataset), "--priors", "p", "--no-progress"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 1 and warned[0].startswith(f"salplug: warning: {dataset / 'masks'}")


def test_a_mask_of_0_and_1_among_0_and_255_masks_is_read_as_binary(dataset):
    expected = score_folder(SODDataset(dataset), dataset / "priors" / "p", "p")
    path = dataset / "masks" / "c.png"
    cv2.imwrite(str(path), (cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 128).astype(np.uint8))
    with pytest.warns(UserWarning, match="c.png: maximum value 1"):
        got = score_folder(SODDataset(dataset), dataset / "priors" / "p", "p")
    assert got.scores == expected.scores


@pytest.mark.parametrize("case", ["empty", "unpaired", "subset"])
def test_eval_of_no_images_is_a_one_line_error_naming_the_folders(dataset, tmp_path, capsys, case):
    listed = tmp_path / "subset.txt"
    listed.write_text("b\n")
    if case == "subset":
        (dataset / "masks" / "b.png").unlink()
    else:
        for path in (dataset / "masks").iterdir():
            path.unlink() if case == "empty" else path.rename(path.with_name(f"x{path.name}"))
    out = tmp_path / "report"
    argv = ["eval", "--dataset", str(dataset), "--priors", "p", "-o", str(out), "--no-progress"]
    assert main([*argv, "--subset", str(listed)] if case == "subset" else argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and not out.exists() and len(lines) == 1, captured.err
    expected = {
        "empty": f"dataset {dataset}: expected images with masks of the same name in {dataset / 'images'} and "
                 f"{dataset / 'masks'}, got 3 images and 0 masks",
        "unpaired": f"dataset {dataset}: expected images with masks of the same name in {dataset / 'images'} and "
                    f"{dataset / 'masks'}, got 3 images and 3 masks, none sharing a name",
        "subset": f"--subset {listed}: expected stems of images with masks, got 1 that no dataset holds: b",
    }[case]
    assert lines[0] == f"salplug: error: {expected}"


def test_scoring_no_images_raises_instead_of_returning_nan(dataset):
    (dataset / "masks" / "b.png").unlink()
    data = SODDataset(dataset, frozenset({"b"}))
    with pytest.raises(DatasetError, match="got 2 pairs, none in the subset"):
        score_folder(data, dataset / "priors" / "p", "p")
    with pytest.raises(DatasetError, match="got 2 pairs, none in the subset"):
        score_chain(data, salplug.Chain([salplug.build("prior", "center")]), "c")


def test_a_16_bit_mask_of_0_and_1_is_read_as_binary_too(dataset):
    expected = score_folder(SODDataset(dataset), dataset / "priors" / "p", "p")
    path = dataset / "masks" / "b.png"
    cv2.imwrite(str(path), (cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 128).astype(np.uint16))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    with pytest.warns(UserWarning, match="b.png: maximum value 1"):
        got = score_folder(SODDataset(dataset), dataset / "priors" / "p", "p")
    assert got.scores == expected.scores
