"""The lps trainer: held-out rule, mask reading, anchor sources, and tiny end-to-end runs on synthetic data."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import salplug
from salplug_lps import LPS, LPSTrainer
from salplug.data import read_mask
from salplug_lps.train import anchor_weights


def scene(seed: int, size: int = 64):
    """A red disc at a random place on a green noisy background: (H×W×3 uint8 RGB, H×W uint8 mask)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:size, :size]
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    mask = (ys - cy) ** 2 + (xs - cx) ** 2 < (0.2 * size) ** 2
    image = np.where(mask[..., None], [230, 40, 30], [60, 150, 80]) + rng.normal(0, 8, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8), (mask * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lps-data")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i in range(5):
        image, mask = scene(i)
        cv2.imwrite(str(root / "images" / f"s{i}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "masks" / f"s{i}.png"), mask)
        (root / "priors" / "rough").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "priors" / "rough" / f"s{i}.png"), cv2.GaussianBlur(mask, (15, 15), 5))
    return root


def test_lps_masks_are_read_with_a_128_threshold(tmp_path):
    values = np.array([[0, 127, 128, 129, 255]], dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "m.png"), values)
    assert read_mask(tmp_path / "m.png").tolist() == [[False, False, False, True, True]]


def test_lps_anchor_weights_follow_the_source():
    torch.manual_seed(0)
    labels = torch.zeros(64, 1, 16, 16, dtype=torch.bool)
    labels[:, :, 4:12, 4:12] = True
    prior = torch.full((64, 1, 16, 16), 0.3)
    noisy = anchor_weights(labels, None, "mask", 0.05)
    assert 0.02 < (noisy != labels.float()).float().mean() < 0.08
    assert torch.equal(anchor_weights(labels, prior, "prior", 0.05), prior)
    mixed = anchor_weights(labels, prior, "mix", 0.0)
    from_prior = (mixed == 0.3).flatten(1).all(dim=1)
    assert 16 < int(from_prior.sum()) < 48
    assert torch.equal(mixed[~from_prior], labels[~from_prior].float())


def test_lps_trainer_needs_priors_for_prior_anchors(tmp_path):
    with pytest.raises(Exception, match="priors"):
        LPSTrainer(out=str(tmp_path / "x.pt"), anchors="mix")


def test_lps_trainer_defaults_are_the_papers():
    cfg = LPSTrainer().config
    assert (cfg.lr, cfg.label_flip, cfg.backbone_lr_mult, cfg.backbone, cfg.anchors) == (1e-3, 0.05, 0.1, "mobilenetv2_100", "mask")


def test_lps_trainer_runs_end_to_end_on_tiny_data(dataset, tmp_path):
    out = tmp_path / "lps-tiny.pt"
    trainer = salplug.build(
        "trainer", "lps", data=str(dataset), hold_out=2, out=str(out), backbone_weights=None, size=64, channels=8,
        dim=8, region="fc", epochs=2, batch_size=2, workers=0,
    )
    before = LPS(checkpoint=None, backbone_weights=None, size=64, channels=8, dim=8, region="fc")
    assert trainer.run() == out
    refiner = LPS(checkpoint=str(out), backbone_weights=None)
    card = refiner.card
    assert refiner.arch["region"] == "fc" and refiner.arch["dim"] == 8
    assert card["data"]["count"] == 3 and card["data"]["held_out"] == 2 and card["data"]["held_out_first"] == ["s0", "s2"]
    assert card["data"]["first"] == ["s1", "s3", "s4"] and card["data"]["anchors"] == "mask"
    assert "hold_out=2" in card["command"] and card["command"].startswith("salplug train lps")
    history = card["training"]["loss_history"]
    assert card["training"]["epochs_done"] == 2 and len(history) == 2 and all(np.isfinite(history))
    initial = before.state_dict()
    moved = [k for k, v in refiner.state_dict().items() if v.is_floating_point() and not torch.equal(v, initial[k].half().float())]
    assert any(k.startswith("net.backbone.") for k in moved) and any(k.startswith("net.pixel.") for k in moved)
    image = torch.rand(1, 3, 40, 40)
    with torch.inference_mode():
        result = refiner(image, torch.rand(1, 1, 40, 40))
    assert result.shape == (1, 1, 40, 40) and torch.isfinite(result).all()


def test_lps_trainer_can_freeze_the_backbone(dataset, tmp_path):
    out = tmp_path / "frozen.pt"
    salplug.build(
        "trainer", "lps", data=str(dataset), hold_out=0, out=str(out), backbone_weights=None, size=64, channels=8,
        dim=8, epochs=1, batch_size=2, workers=0, freeze_backbone=True,
    ).run()
    before = LPS(checkpoint=None, backbone_weights=None, size=64, channels=8, dim=8)
    after = LPS(checkpoint=str(out), backbone_weights=None)
    for key, value in before.state_dict().items():
        if key.startswith("net.backbone.") and value.is_floating_point():
            torch.testing.assert_close(after.state_dict()[key], value.half().float(), msg=key)
    assert "frozen" in after.card["stored"]


def test_lps_trainer_takes_anchors_from_prior_maps(dataset, tmp_path):
    out = tmp_path / "mix.pt"
    salplug.build(
        "trainer", "lps", data=str(dataset), priors=str(dataset / "priors" / "rough"), anchors="mix", hold_out=1,
        out=str(out), backbone_weights=None, size=64, channels=8, dim=8, epochs=1, batch_size=2, workers=0,
    ).run()
    card = LPS(checkpoint=str(out), backbone_weights=None).card
    assert card["data"]["anchors"] == "mix" and card["data"]["priors"].endswith("rough") and card["data"]["count"] == 4


def test_lps_trainer_on_the_baseline_backbone_trains_on_one_fold(dataset, tmp_path):
    out = tmp_path / "on-baseline.pt"
    salplug.build(
        "trainer", "lps", data=str(dataset), hold_out=1, fold=1, out=str(out), backbone="baseline", backbone_weights=None,
        freeze_backbone=True, size=64, channels=8, dim=8, epochs=1, batch_size=2, workers=0,
    ).run()
    refiner = LPS(checkpoint=str(out), backbone_weights=None)
    card = refiner.card
    assert refiner.arch["backbone"] == "baseline"
    assert card["data"]["first"] == ["s1", "s3"] and card["data"]["fold"] == 1  # s0 held out; folds of all five stems
    assert "only fold 1 of 2" in card["split_rule"]
    with torch.inference_mode():
        assert refiner(torch.rand(1, 3, 40, 40), torch.rand(1, 1, 40, 40)).shape == (1, 1, 40, 40)


def test_validation_view_links_the_held_out_images_of_one_fold(dataset, tmp_path):
    from salplug_lps.validation import main

    assert main(["--data", str(dataset), "--hold-out", "3", "--fold", "1", "-o", str(tmp_path / "view")]) == 0
    assert sorted(p.stem for p in (tmp_path / "view" / "images").iterdir()) == ["s1", "s3"]  # held out: s0, s1, s3


def test_lps_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(dataset, tmp_path):
    """Flipped anchor pixels draw from the global RNG: the run state carries it, so resuming is exact."""
    from salplug.train import read_state, state_path

    common = {"data": str(dataset), "hold_out": 1, "backbone_weights": None, "size": 32, "channels": 4, "dim": 4,
              "region": "fc", "epochs": 2, "batch_size": 2, "workers": 0}
    salplug.build("trainer", "lps", out=str(tmp_path / "whole.pt"), **common).run()
    salplug.build("trainer", "lps", out=str(tmp_path / "cut.pt"), max_steps=3, **common).run()
    salplug.build("trainer", "lps", out=str(tmp_path / "cut.pt"), resume=True, **common).run()
    whole, cut = (read_state(state_path(tmp_path / f"{name}.pt"))["model"] for name in ("whole", "cut"))
    for name, value in whole.items():
        assert torch.equal(value, cut[name]), name
