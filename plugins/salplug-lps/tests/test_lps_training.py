"""The lps trainer: split rule, mask reading, augmentation, and a tiny end-to-end run on synthetic data."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import salplug
from salplug_lps import LPS, LPSTrainer
from salplug.io import read_mask
from salplug_lps.train import augment, paired_files


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
    return root


def test_lps_masks_are_read_with_a_128_threshold(tmp_path):
    values = np.array([[0, 127, 128, 129, 255]], dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "m.png"), values)
    assert read_mask(tmp_path / "m.png").tolist() == [[False, False, False, True, True]]


def test_lps_training_needs_a_mask_for_every_image(dataset, tmp_path):
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "lonely.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="lonely"):
        paired_files(tmp_path / "images", dataset / "masks")


def test_lps_augment_keeps_image_and_mask_aligned():
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(4, 3, 32, 32)
    images[:, 0, 8:24, 4:14] = 1  # the mask copied into the red channel
    masks = images[:, :1].clone()
    views, labels = augment(images, masks, 0.6, True, g)
    assert views.shape == images.shape and labels.shape == masks.shape and labels.dtype == torch.bool
    assert ((views[:, :1] > 0.5) == labels).float().mean() == 1
    assert not torch.equal(labels, masks > 0.5)  # something moved
    same, same_labels = augment(images, masks, 1.0, False, g)
    torch.testing.assert_close(same, images)
    assert torch.equal(same_labels, masks > 0.5)


def test_lps_trainer_config_conformance(tmp_path):
    salplug.testing.check_component(LPSTrainer, {"out": str(tmp_path / "x.pt")})
    cfg = LPSTrainer().config
    assert (cfg.lr, cfg.label_flip, cfg.backbone_lr_mult, cfg.backbone) == (1e-3, 0.05, 0.1, "mobilenetv2_100")


def test_lps_trainer_runs_end_to_end_on_tiny_data(dataset, tmp_path):
    out = tmp_path / "lps-even.pt"
    trainer = salplug.build(
        "trainer", "lps", images=str(dataset / "images"), masks=str(dataset / "masks"), split="even",
        out=str(out), backbone_weights=None, size=64, channels=8, dim=8, region="fc", epochs=2, batch_size=2,
    )
    before = LPS(checkpoint=None, backbone_weights=None, size=64, channels=8, dim=8, region="fc")
    assert trainer.run() == out
    refiner = LPS(checkpoint=str(out), backbone_weights=None)
    card = refiner.card
    assert refiner.arch["region"] == "fc" and refiner.arch["dim"] == 8
    assert card["data"]["split"] == "even" and card["data"]["count"] == 3 and card["data"]["first"] == ["s0", "s2", "s4"]
    assert "split=even" in card["command"] and card["command"].startswith("salplug train lps")
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
        "trainer", "lps", images=str(dataset / "images"), masks=str(dataset / "masks"), split="odd", out=str(out),
        backbone_weights=None, size=64, channels=8, dim=8, epochs=1, batch_size=2, freeze_backbone=True,
    ).run()
    before = LPS(checkpoint=None, backbone_weights=None, size=64, channels=8, dim=8)
    after = LPS(checkpoint=str(out), backbone_weights=None)
    for key, value in before.state_dict().items():
        if key.startswith("net.backbone.") and value.is_floating_point():
            torch.testing.assert_close(after.state_dict()[key], value.half().float(), msg=key)
    assert "frozen" in after.card["stored"]
