"""salplug.train._progress.end_epoch: the epoch end shared by the trainers (schedule, log line, checkpoint with figures)."""

from __future__ import annotations

import torch
from torch import nn

from salplug.components import ComponentConfig, Refiner
from salplug.train._progress import end_epoch
from salplug.components._weights import read_checkpoint


class Scaled(Refiner):
    name = "scaled"

    class Config(ComponentConfig):
        pass

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, image, saliency):
        return (saliency * self.scale).clamp(0, 1)


def test_end_epoch_steps_the_schedule_logs_and_rewrites_the_checkpoint(tmp_path, capsys):
    model = Scaled().train()
    optim = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(optim, step_size=1, gamma=0.1)
    history: list[float] = []
    out = tmp_path / "scaled.pt"
    optim.step()  # an epoch's steps come before the schedule's
    end_epoch("scaled", model, str(out), {"data": "none"}, history, epoch=0, epochs=2, mean_loss=0.1234567,
              started=0.0, optim=optim, sched=sched, images=3)
    assert history == [0.12346] and optim.param_groups[0]["lr"] == 0.1 and model.training
    assert "scaled: epoch 1/2 loss 0.12346 lr 0.1 " in capsys.readouterr().out
    card = read_checkpoint(out)["card"]
    assert card["data"] == "none" and card["training"]["epochs_done"] == 1 and card["training"]["images"] == 3
    assert card["training"]["loss_history"] == [0.12346]

    end_epoch("scaled", model, str(out), {}, history, epoch=1, epochs=2, mean_loss=0.05, started=0.0)
    line = capsys.readouterr().out
    assert "scaled: epoch 2/2 loss 0.05000 " in line and " lr " not in line  # no optimizer given: no lr shown
    assert read_checkpoint(out)["card"]["training"]["loss_history"] == [0.12346, 0.05]
