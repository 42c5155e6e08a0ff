"""The per-image S-measure diagnosis on a tiny synthetic dataset folder."""

import re

import cv2
import numpy as np

from salplug.io import map_tensor
from salplug_lps import LPS
from salplug_lps.diagnosis import main, per_image, s_measure, summary

FAST = {"checkpoint": None, "backbone_weights": None, "size": 64, "channels": 8, "dim": 8}


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


def test_lps_diagnosis_rows_score_the_prior_and_the_output(tmp_path, capsys):
    write_dataset(tmp_path)
    rows = per_image(LPS(**FAST, merge=False), tmp_path, "p")
    assert [r.stem for r in rows] == ["im0", "im1", "im2"]
    perfect = map_tensor((cv2.imread(str(tmp_path / "masks" / "im0.png"), 0) / 255).astype(np.float32))
    assert s_measure(perfect, perfect[0, 0].numpy() > 0.5) > 0.99
    for r in rows:
        assert 0.7 - 0.01 < r.object_prior < 0.7 + 0.01 and r.background_prior == 0.0
        assert 0 <= r.s_out <= 1 and r.s_prior > 0.9
    text = summary(rows)
    assert text.startswith("3 images") and sorted(re.findall(r"\bim\d\b", text)) == ["im0", "im1", "im2"]
    assert main(["--dataset", str(tmp_path), "--prior", "p", "--set", "checkpoint=null", "--set", "backbone_weights=null",
                 "--set", "size=64", "--set", "channels=8", "--set", "dim=8", "--worst", "2"]) == 0
    assert len(re.findall(r"\bim\d\b", capsys.readouterr().out)) == 2
