"""The baseline prior keeps the contract; its trainer and the out-of-fold command work end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import salplug
from salplug.components import shipped_checkpoint
from salplug.errors import CheckpointError
from salplug.data import read_map, write_png
from salplug_baseline import Baseline, BaselineFeatures
from salplug.pipeline import ManifestError
from salplug_baseline.out_of_fold import COMMAND as OUT_OF_FOLD
from salplug_baseline.prior import SHIPPED_FILES
from salplug_baseline.train import saliency_loss, training_keys

SMALL = {"checkpoint": None, "backbone_weights": None, "size": 64, "channels": 16}


def test_backbone_levels_are_the_maps_the_prior_reads_its_logits_from():
    torch.manual_seed(0)
    features = BaselineFeatures(weights=None)
    image = torch.rand(2, 3, 64, 64)
    levels = features(image)
    assert [f.shape[1] for f in levels] == features.channels
    assert [64 // f.shape[-1] for f in levels] == features.strides
    detector = features.detector
    torch.testing.assert_close(detector.decoder.head(levels[0]), detector.logits(image))


def test_an_untrained_baseline_is_flagged():
    assert Baseline(**SMALL).untrained


def test_loss_is_low_for_the_mask_and_high_for_its_inverse():
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    good, bad = saliency_loss(20 * (mask - 0.5), mask), saliency_loss(-20 * (mask - 0.5), mask)
    assert float(good) < 0.01 < 5 < float(bad)


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(8):
        image = rng.integers(100, 255, (48, 64, 3), dtype=np.uint8)
        mask = np.zeros((48, 64), np.uint8)
        mask[10:38, 8 + 2 * i : 36 + 2 * i] = 255
        image[mask > 0] //= 4
        write_png(tmp_path / "data" / "images" / f"img{i}.png", image)
        write_png(tmp_path / "data" / "masks" / f"img{i}.png", mask)
    return tmp_path / "data"


def train(dataset, out, fold):
    trainer = salplug.build("trainer", "baseline", data=str(dataset), out=str(out), fold=fold, size=64, channels=16,
                            epochs=2, batch_size=2, workers=0)
    return trainer.run()


def test_fold_training_then_out_of_fold_maps_cover_every_image(dataset, tmp_path, capsys):
    fold0, fold1 = train(dataset, tmp_path / "f0.pt", 0), train(dataset, tmp_path / "f1.pt", 1)
    card = Baseline(checkpoint=str(fold0)).card
    assert card["data"]["fold"] == 0 and card["data"]["count"] == 4 and card["command"].startswith("salplug train")
    assert card["training"]["state"] == "finished" and (tmp_path / card["loss_curve"]).is_file()
    from salplug.data import FolderDataset

    assert card["data"]["first"] == training_keys(FolderDataset(dataset, masks=True), None, 2, 0)[:3]
    out = tmp_path / "maps"
    stems = tmp_path / "stems.txt"
    stems.write_text("img1\nimg6\n")
    assert OUT_OF_FOLD.main(["--data", str(dataset), "-o", str(out), "--checkpoints", str(fold0), str(fold1),
                             "--stems", str(stems)]) == 0
    assert sorted(p.stem for p in out.glob("*.png")) == ["img1", "img6"]
    assert "2 written" in capsys.readouterr().out
    assert OUT_OF_FOLD.main(["--data", str(dataset), "-o", str(out), "--checkpoints", str(fold0), str(fold1)]) == 0
    assert sorted(p.stem for p in out.glob("*.png")) == [f"img{i}" for i in range(8)]
    assert read_map(out / "img3.png").shape == (48, 64)
    assert "6 written" in capsys.readouterr().out  # the two mapped before are kept
    moved = tmp_path / "f0-copy.pt"
    moved.write_bytes(fold0.read_bytes())
    with pytest.raises(ManifestError, match="holds out-of-fold maps of other fold models"):
        OUT_OF_FOLD.main(["--data", str(dataset), "-o", str(out), "--checkpoints", str(moved), str(fold1)])


def test_out_of_fold_refuses_a_model_of_another_fold(dataset, tmp_path):
    fold0 = train(dataset, tmp_path / "f0.pt", 0)
    with pytest.raises(CheckpointError, match="without fold 1 of 2, its card says fold=0"):
        from salplug_baseline.out_of_fold import out_of_fold

        out_of_fold(dataset, tmp_path / "maps", [str(fold0), str(fold0)], progress=False)


@pytest.mark.parametrize("tag", ["shipped", "fold0", "fold1"])
def test_shipped_checkpoints_load_and_name_their_data(tag):
    assert shipped_checkpoint("salplug_baseline", SHIPPED_FILES[tag]).is_file()
    prior = Baseline(checkpoint=tag, backbone_weights=None)
    assert "duts-tr" in prior.card["data"]["root"] and "sod-dev" not in prior.card["data"]["root"]
    assert prior(torch.rand(1, 3, 41, 53)).shape == (1, 1, 41, 53)
    assert BaselineFeatures(weights=tag).card == prior.card
