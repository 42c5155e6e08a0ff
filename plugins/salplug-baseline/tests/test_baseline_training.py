"""The baseline trainer on the core's loop: an interrupted and resumed run ends with the uninterrupted weights."""

from __future__ import annotations

import numpy as np
import torch

import salplug
from salplug.data import write_png
from salplug.train import read_state, state_path


def test_baseline_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        image = rng.integers(100, 255, (40, 48, 3), dtype=np.uint8)
        mask = np.zeros((40, 48), np.uint8)
        mask[8:30, 6 + 2 * i : 30 + 2 * i] = 255
        image[mask > 0] //= 4
        write_png(tmp_path / "data" / "images" / f"img{i}.png", image)
        write_png(tmp_path / "data" / "masks" / f"img{i}.png", mask)
    common = {"data": str(tmp_path / "data"), "size": 32, "channels": 8, "epochs": 2, "batch_size": 2, "workers": 0}
    salplug.build("trainer", "baseline", out=str(tmp_path / "whole.pt"), **common).run()
    stopped = salplug.build("trainer", "baseline", out=str(tmp_path / "cut.pt"), max_steps=2, **common).run()
    assert read_state(state_path(stopped))["settings"]["epochs"] == 2
    salplug.build("trainer", "baseline", out=str(tmp_path / "cut.pt"), resume=True, **common).run()
    whole, cut = (read_state(state_path(tmp_path / f"{name}.pt"))["model"] for name in ("whole", "cut"))
    assert whole.keys() == cut.keys()
    for name, value in whole.items():
        assert torch.equal(value, cut[name]), name
