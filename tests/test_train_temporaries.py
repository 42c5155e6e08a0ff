"""Half-written checkpoint and state files a killed training run left are removed by the next run of the
same `out`, and only those."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import salplug
from salplug.data._datasets import FolderDataset
from salplug.data._io import write_png
from salplug.train._data import TrainingSet
from salplug.train._loop import LoopConfig, fit, state_path


class Tiny(salplug.PriorProvider):
    name = "tiny-temporaries"

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.net = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, image, keys=None):
        return torch.sigmoid(self.net(image))


def _fit(folder, out, *, resume):
    torch.manual_seed(0)
    model = Tiny()
    data = FolderDataset(folder, masks=True)
    fit(trainer="tiny", model=model, optim=torch.optim.SGD(model.parameters(), 0.1),
        dataset=TrainingSet(data, data.keys, 16, seed=0),
        loss=lambda batch: F.binary_cross_entropy(model(batch["image"]), batch["mask"]),
        config=LoopConfig(out=str(out), epochs=1, batch_size=2, workers=0, resume=resume), card={})


@pytest.mark.parametrize("resume", [False, True])
def test_the_next_run_of_an_out_removes_the_temporaries_a_killed_run_left(tmp_path, capsys, resume):
    rng = np.random.default_rng(0)
    for i in range(2):
        write_png(tmp_path / "data" / "images" / f"{i}.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
        write_png(tmp_path / "data" / "masks" / f"{i}.png", (rng.random((16, 16)) > 0.5).astype(np.uint8) * 255)
    out = tmp_path / "runs" / "tiny.pt"
    _fit(tmp_path / "data", out, resume=False)
    left = [out.parent / f".{out.name}.k3x_9q2a.tmp", out.parent / f".{state_path(out).name}.0abcdefg.tmp"]
    kept = [out.parent / f".other.pt.k3x_9q2a.tmp", out.parent / f"{out.name}.notes.tmp",
            out.parent / f".{out.name}.too-long-part.tmp"]
    for path in left + kept:
        path.write_bytes(b"half a torch.save")
    capsys.readouterr()
    _fit(tmp_path / "data", out, resume=resume)
    assert [path for path in left if path.exists()] == []
    assert [path for path in kept if not path.exists()] == []
    lines = [line for line in capsys.readouterr().out.splitlines() if "temporar" in line]
    assert len(lines) == 1 and all(path.name in lines[0] for path in left), lines
