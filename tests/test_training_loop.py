"""The resumable loop: an interrupted-and-resumed run ends with the weights of an uninterrupted one."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import salplug
from salplug.data._datasets import FolderDataset
from salplug.errors import CheckpointError
from salplug.data._io import write_png
from salplug.train._data import TrainingSet, epoch_order
from salplug.train._loop import LoopConfig, fit, state_path


class TinyPrior(salplug.PriorProvider):
    name = "tiny-trainable"

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1))

    def forward(self, image, keys=None):
        return torch.sigmoid(self.net(image))


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(10):
        image = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
        mask = np.zeros((20, 24), np.uint8)
        mask[5:15, 4 + i : 14 + i] = 255
        image[mask > 0] //= 3
        write_png(tmp_path / "data" / "images" / f"{i:02d}.png", image)
        write_png(tmp_path / "data" / "masks" / f"{i:02d}.png", mask)
    return tmp_path / "data"


def run(folder, out, *, interrupt_at=None, resume=False, workers=0, epochs=3, pkill=False):
    torch.manual_seed(0)
    model = TinyPrior()
    optim = torch.optim.Adam(model.parameters(), 1e-2)
    sched = torch.optim.lr_scheduler.StepLR(optim, 4, 0.5)
    data = FolderDataset(folder, masks=True)
    dataset = TrainingSet(data, data.keys, 16, crop=0.7, hflip=True, seed=3)
    calls = {"n": 0}

    def step(batch):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            if pkill:  # SIGTERM to every process, from another one: a worker obeys its parent's quietly
                pids = [os.getpid(), *(child.pid for child in multiprocessing.active_children())]
                subprocess.run(["kill", "-TERM", *map(str, pids)], check=True)
                time.sleep(0.5)
            else:
                os.kill(os.getpid(), signal.SIGINT)
        loss = F.binary_cross_entropy(model(batch["image"]), batch["mask"])
        optim.zero_grad()
        loss.backward()
        optim.step()
        return float(loss.detach())

    config = LoopConfig(out=str(out), epochs=epochs, batch_size=3, workers=workers, seed=3, resume=resume)
    result = fit(trainer="tiny", model=model, optim=optim, dataset=dataset, step=step, config=config,
                 card={"data": "synthetic"}, sched=sched)
    return model, result


def _run_and_save(saved, folder, out, kwargs):
    model, result = run(folder, out, **kwargs)
    torch.save({"state": model.state_dict(), "result": result}, saved)


def run_in_child(folder, out, **kwargs):
    """`run` in a child process, so the signals it sends at `interrupt_at` reach that child, never pytest."""
    saved = out.parent / f"{out.stem}.child-result.pt"
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_run_and_save, args=(saved, folder, out, kwargs))
    child.start()
    child.join(300)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0 and saved.is_file(), f"the training child ended with exit code {child.exitcode}"
    payload = torch.load(saved, weights_only=False)
    model = TinyPrior()
    model.load_state_dict(payload["state"])
    return model, payload["result"]


@pytest.mark.subprocess
def test_interrupted_and_resumed_run_ends_with_the_same_weights(folder, tmp_path):
    whole, done = run(folder, tmp_path / "whole" / "m.pt")
    assert done.finished and done.progress.step == 12
    part, stopped = run_in_child(folder, tmp_path / "cut" / "m.pt", interrupt_at=5)
    assert not stopped.finished and "SIGINT" in stopped.reason and stopped.progress.step == 5
    assert state_path(tmp_path / "cut" / "m.pt").exists()
    resumed, finished = run(folder, tmp_path / "cut" / "m.pt", resume=True)
    assert finished.finished and finished.progress.step == 12
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=1e-6)
    assert finished.progress.history == pytest.approx(done.progress.history, abs=1e-6)
    logged = [json.loads(line) for line in (tmp_path / "cut" / "m.log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in logged] == list(range(1, 13))
    card = TinyPrior().load_weights(tmp_path / "cut" / "m.pt")
    assert card["training"]["state"] == "finished" and card["loss_curve"] == "m.loss.png"
    assert (tmp_path / "cut" / "m.loss.png").stat().st_size > 0


@pytest.mark.subprocess
def test_the_interrupted_checkpoint_is_usable_and_says_so(folder, tmp_path):
    _, stopped = run_in_child(folder, tmp_path / "m.pt", interrupt_at=2)
    card = TinyPrior().load_weights(stopped.checkpoint)
    assert card["training"]["state"].startswith("interrupted by SIGINT") and card["training"]["steps"] == 2


def test_worker_processes_give_the_same_views_as_the_main_process(folder, tmp_path):
    a, _ = run(folder, tmp_path / "a.pt", epochs=1)
    b, _ = run(folder, tmp_path / "b.pt", epochs=1, workers=2)
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value, rtol=0, atol=1e-6)


@pytest.mark.subprocess
def test_a_signal_to_every_process_of_the_command_still_saves(folder, tmp_path):
    """`pkill -f` also signals the DataLoader workers; the run must still stop through its save."""
    _, stopped = run_in_child(folder, tmp_path / "m.pt", interrupt_at=2, workers=1, pkill=True)
    assert not stopped.finished and "SIGTERM" in stopped.reason and stopped.progress.step == 2
    assert state_path(tmp_path / "m.pt").exists()


def test_resume_without_a_state_names_the_file(folder, tmp_path):
    with pytest.raises(CheckpointError, match=r"m\.state\.pt does not exist \(resume needs"):
        run(folder, tmp_path / "m.pt", resume=True)


def test_views_are_fixed_by_seed_epoch_and_index(folder):
    data = FolderDataset(folder, masks=True)
    views = TrainingSet(data, data.keys, 16, crop=0.5, hflip=True, seed=1)
    first, again, other = views[(0, 4)], views[(0, 4)], views[(1, 4)]
    assert torch.equal(first["image"], again["image"]) and not torch.equal(first["image"], other["image"])
    assert first["image"].shape == (3, 16, 16) and first["mask"].shape == (1, 16, 16)
    assert epoch_order(10, 1, 0) == epoch_order(10, 1, 0) != epoch_order(10, 1, 1)


@pytest.mark.parametrize(("precision", "dtype"), [("auto", torch.float32), ("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_precision_sets_the_step_arithmetic_on_the_cpu(folder, tmp_path, precision, dtype):
    model = TinyPrior()
    optim = torch.optim.SGD(model.parameters(), 1e-2)
    data = FolderDataset(folder, masks=True)
    seen = []

    def step(batch):
        logits = model.net(batch["image"])
        seen.append(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits.float(), batch["mask"])
        optim.zero_grad()
        loss.backward()
        optim.step()
        return float(loss.detach())

    config = LoopConfig(out=str(tmp_path / "p.pt"), epochs=1, batch_size=5, workers=0, precision=precision)
    fit(trainer="tiny", model=model, optim=optim, dataset=TrainingSet(data, data.keys, 16), step=step, config=config, card={})
    assert seen == [dtype, dtype]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast leaves the weights in fp32
