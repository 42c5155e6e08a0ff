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
