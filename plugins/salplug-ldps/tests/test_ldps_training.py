"""The `ldps` trainer (`salplug train ldps`) on tiny synthetic data: no masks, held-out photos, the resumable loop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import salplug
from salplug_ldps import LDPS, LDPSTrainer


@pytest.fixture
def folders(tmp_path):
    """Six 48×48 photos of a bright disc on noise, two folders of rough disc priors; no masks anywhere."""
    rng = np.random.default_rng(0)
    images, priors, other = tmp_path / "data" / "images", tmp_path / "priors", tmp_path / "other"
    for folder in (images, priors, other):
        folder.mkdir(parents=True)
    yy, xx = np.mgrid[:48, :48]
    for i in range(6):
        disc = (yy - 24 - i) ** 2 + (xx - 20 - 2 * i) ** 2 < 12**2
        photo = rng.integers(0, 90, (48, 48, 3)).astype(np.uint8)
        photo[disc] = (230, 200, 40)
        cv2.imwrite(str(images / f"p{i}.png"), photo)
        cv2.imwrite(str(priors / f"p{i}.png"), np.where(disc, 240, 20).astype(np.uint8))
        cv2.imwrite(str(other / f"p{i}.png"), np.where(disc, 200, 60).astype(np.uint8))
    return images.parent, priors, other


def test_ldps_trainer_config_is_conformant_with_the_papers_rates():
    cfg = LDPSTrainer().config
    assert (cfg.lr, cfg.head_lr_mult, cfg.batch_size, cfg.size, cfg.hold_out) == (5e-4, 10.0, 8, 256, 300)
    assert "sod-dev" not in cfg.data and all("sod-dev" not in p for p in cfg.priors)


def test_ldps_trainer_runs_end_to_end_and_keeps_its_held_out_photos(folders, tmp_path):
    data, priors, other = folders
    out = tmp_path / "ldps.pt"
    trainer = salplug.build("trainer", "ldps", data=str(data), priors=[str(priors), str(other)], out=str(out),
                            hold_out=2, epochs=1, batch_size=4, size=64, backbone_weights=None, workers=0)
    before = LDPS(checkpoint=None, backbone_weights=None, size=64)
    assert trainer.run() == out
    after = LDPS(checkpoint=str(out), backbone_weights=None)
    card = after.card
    assert card["command"].startswith("salplug train ldps") and "hold_out=2" in card["command"]
    # two of six photos held out (evenly spaced), the other four paired with each prior folder
    assert card["data"]["pairs_per_prior_folder"] == {str(priors): 4, str(other): 4}
    assert card["data"]["held_out"] == 2 and card["data"]["held_out_first"] == ["p0", "p3"]
    assert card["training"]["steps"] == 2 and card["training"]["state"] == "finished"
    moved = [k for k, v in after.net.head.state_dict().items()
             if v.is_floating_point() and not torch.equal(v, before.net.head.state_dict()[k].half().float())]
    assert moved, "two SGD steps changed no head weight"
    assert (tmp_path / "ldps.state.pt").is_file(), "the run state that --resume continues from"


def test_ldps_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(folders, tmp_path):
    from salplug.train import read_state, state_path

    data, priors, _ = folders
    common = {"data": str(data), "priors": [str(priors)], "hold_out": 1, "epochs": 2, "batch_size": 2, "size": 32,
              "backbone_weights": None, "workers": 0}
    salplug.build("trainer", "ldps", out=str(tmp_path / "whole.pt"), **common).run()
    salplug.build("trainer", "ldps", out=str(tmp_path / "cut.pt"), max_steps=4, **common).run()
    salplug.build("trainer", "ldps", out=str(tmp_path / "cut.pt"), resume=True, **common).run()
    whole, cut = (read_state(state_path(tmp_path / f"{name}.pt"))["model"] for name in ("whole", "cut"))
    for name, value in whole.items():
        assert torch.equal(value, cut[name]), name
