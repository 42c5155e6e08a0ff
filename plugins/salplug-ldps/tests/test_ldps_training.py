"""The `ldps` trainer (`salplug train ldps`) and its `python -m salplug_ldps.train` flags, on tiny synthetic data."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import salplug
from salplug_ldps import LDPS, LDPSTrainer
from salplug_ldps.train import main


@pytest.fixture
def folders(tmp_path):
    """Four 48×48 photos of a bright disc on noise, with rough disc priors; no masks anywhere."""
    rng = np.random.default_rng(0)
    images, priors = tmp_path / "images", tmp_path / "priors"
    images.mkdir()
    priors.mkdir()
    yy, xx = np.mgrid[:48, :48]
    for i in range(4):
        disc = (yy - 24 - i) ** 2 + (xx - 20 - 2 * i) ** 2 < 12**2
        photo = rng.integers(0, 90, (48, 48, 3)).astype(np.uint8)
        photo[disc] = (230, 200, 40)
        prior = np.where(disc, 240, 20).astype(np.uint8)
        cv2.imwrite(str(images / f"p{i}.png"), photo)
        cv2.imwrite(str(priors / f"p{i}.png"), prior)
    return images, priors


def test_ldps_trainer_config_is_conformant_and_pairs_folders(tmp_path):
    salplug.testing.check_component(LDPSTrainer, {"out": str(tmp_path / "x.pt")})
    cfg = LDPSTrainer().config
    assert (cfg.lr, cfg.head_lr_mult, cfg.steps, cfg.batch_size, cfg.size) == (5e-4, 10.0, 720, 8, 256)
    with pytest.raises(salplug.ConfigError, match="one priors folder per images folder"):
        LDPSTrainer(images=["a", "b"], priors=["c"])


def test_ldps_trainer_runs_end_to_end_and_records_its_command(folders, tmp_path):
    images, priors = folders
    out = tmp_path / "ldps.pt"
    trainer = salplug.build(
        "trainer", "ldps", images=[str(images)], priors=[str(priors)], out=str(out), steps=3, batch_size=2,
        size=64, backbone_weights=None,
    )
    before = LDPS(checkpoint=None, backbone_weights=None, size=64)
    assert trainer.run() == out
    after = LDPS(checkpoint=str(out), backbone_weights=None)
    card = after.card
    assert card["command"].startswith("salplug train ldps") and "steps=3" in card["command"]
    assert card["data"] == [f"{images} + {priors}: 4 pairs"]
    assert card["training"]["steps"] == 3 and np.isfinite(card["training"]["final_smoothed_loss"])
    moved = [k for k, v in after.net.head.state_dict().items()
             if v.is_floating_point() and not torch.equal(v, before.net.head.state_dict()[k].half().float())]
    assert moved, "three SGD steps changed no head weight"


def test_ldps_module_cli_runs_the_same_trainer(folders, tmp_path, monkeypatch, capsys):
    images, priors = folders
    out = tmp_path / "cli.pt"
    seen = {}
    monkeypatch.setattr(LDPSTrainer, "run", lambda self: seen.setdefault("config", self.config) and out)
    main(["--images", str(images), "--priors", str(priors), "--output", str(out), "--steps", "5", "--seed", "2"])
    assert (seen["config"].steps, seen["config"].seed, seen["config"].out) == (5, 2, str(out))
    assert f"wrote {out}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--images", str(images), "--images", str(images), "--priors", str(priors), "--output", str(out)])
