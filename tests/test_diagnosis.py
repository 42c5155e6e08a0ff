"""The per-image S-measure diagnosis on a tiny synthetic dataset folder."""

import re

import cv2
import numpy as np
import pytest

from salplug.cli import _app as cli
from salplug.cli import main
from salplug.components import Refiner
from salplug.metrics._diagnosis import per_image, s_measure, summary
from salplug.data._io import map_tensor


class EraseLeft(Refiner):
    """Test refiner: clears the left half of the map, so part of each object is lost."""

    name = "erase-left"

    def forward(self, image, saliency):
        out = saliency.clone()
        out[..., : out.shape[-1] // 2] = 0
        return out


def write_dataset(root):
    rng = np.random.default_rng(0)
    for sub in ("images", "masks", "priors/p"):
        (root / sub).mkdir(parents=True)
    for i in range(3):
        mask = np.zeros((40, 48), np.uint8)
        mask[10:30, 12 + i : 30 + i] = 255
        cv2.imwrite(str(root / "images" / f"im{i}.png"), rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
        cv2.imwrite(str(root / "masks" / f"im{i}.png"), mask)
        cv2.imwrite(str(root / "priors" / "p" / f"im{i}.png"), (mask * 0.7).astype(np.uint8))


def test_diagnosis_rows_score_the_prior_and_the_output(tmp_path, capsys, monkeypatch):
    write_dataset(tmp_path)
    rows = per_image(EraseLeft(), tmp_path, "p")
    assert [r.stem for r in rows] == ["im0", "im1", "im2"]
    perfect = map_tensor((cv2.imread(str(tmp_path / "masks" / "im0.png"), 0) / 255).astype(np.float32))
    assert s_measure(perfect, perfect[0, 0].numpy() > 0.5) > 0.99
    for r in rows:
        assert 0.7 - 0.01 < r.object_prior < 0.7 + 0.01 and r.background_prior == 0.0
        assert 0 < r.object_out < r.object_prior - 0.1 and r.background_out == 0.0
        assert r.s_prior > 0.9 and 0 <= r.s_out < r.s_prior
    text = summary(rows)
    assert text.startswith("3 images") and sorted(re.findall(r"\bim\d\b", text)) == ["im0", "im1", "im2"]
    assert "3 images fall by 0.05 or more, carrying 100% of the net fall" in text
    built = []
    monkeypatch.setattr(cli, "build", lambda kind, name, **options: built.append((kind, name, options)) or EraseLeft())
    assert main(["diagnose", "--refiner", "erase-left", "--dataset", str(tmp_path), "--prior", "p", "--set", "size=64", "--worst", "2"]) == 0
    assert built == [("refiner", "erase-left", {"size": 64})]
    assert len(re.findall(r"\bim\d\b", capsys.readouterr().out)) == 2
    assert main(["diagnose", "--refiner", "erase-left", "--dataset", str(tmp_path), "--prior", "p", "--set", "size"]) == 2
    assert "expected --set FIELD=VALUE, got 'size'" in capsys.readouterr().err
