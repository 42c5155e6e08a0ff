"""The resumable loop: an interrupted-and-resumed run ends with the weights of an uninterrupted one."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import salplug
from salplug.cli import main
from salplug.data._datasets import FolderDataset
from salplug.errors import CheckpointError
from salplug.data._io import write_png
from salplug.train._data import TrainingSet, epoch_order
from salplug.train._loop import Interrupted, LoopConfig, fit, state_path


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


def run(folder, out, *, interrupt_at=None, resume=False, workers=0, epochs=3, pkill=False, model_cls=TinyPrior):
    torch.manual_seed(0)
    model = model_cls()
    optim = torch.optim.Adam(model.parameters(), 1e-2)
    sched = torch.optim.lr_scheduler.StepLR(optim, 4, 0.5)
    data = FolderDataset(folder, masks=True)
    dataset = TrainingSet(data, data.keys, 16, crop=0.7, hflip=True, seed=3)
    calls = {"n": 0}

    def loss(batch):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            if pkill:  # SIGTERM to every process, from another one: a worker obeys its parent's quietly
                pids = [os.getpid(), *(child.pid for child in multiprocessing.active_children())]
                subprocess.run(["kill", "-TERM", *map(str, pids)], check=True)
                time.sleep(0.5)
            else:
                os.kill(os.getpid(), signal.SIGINT)
        return F.binary_cross_entropy(model(batch["image"]), batch["mask"])

    config = LoopConfig(out=str(out), epochs=epochs, batch_size=3, workers=workers, seed=3, resume=resume)
    try:
        result = fit(trainer="tiny", model=model, optim=optim, dataset=dataset, loss=loss, config=config,
                     card={"data": "synthetic"}, sched=sched)
    except Interrupted as stop:
        result = stop.result
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

    def loss(batch):
        logits = model.net(batch["image"])
        seen.append(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits.float(), batch["mask"])

    config = LoopConfig(out=str(tmp_path / "p.pt"), epochs=1, batch_size=5, workers=0, precision=precision)
    fit(trainer="tiny", model=model, optim=optim, dataset=TrainingSet(data, data.keys, 16), loss=loss, config=config, card={})
    assert seen == [dtype, dtype]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast leaves the weights in fp32


SEND = {}
"""Step at which the tiny CLI trainer's loss sends itself a signal: {"step": n, "signal": s}."""


class TinyTrainer(salplug.Trainer):
    """A trainer on the loop small enough for the command line in a test."""

    name = "tiny-loop"

    class Config(LoopConfig):
        data: str = Field(description="Dataset folder with images/ and masks/.")
        lr: float = Field(default=1e-2, gt=0, description="Adam learning rate.")
        workers: int = Field(default=0, ge=0, description="DataLoader workers.")

    def run(self):
        cfg = self.config
        torch.manual_seed(cfg.seed)
        model = TinyPrior()
        optim = torch.optim.Adam(model.parameters(), cfg.lr)
        data = FolderDataset(cfg.data, masks=True)
        calls = {"n": 0}

        def loss(batch):
            calls["n"] += 1
            if calls["n"] == SEND.get("step"):
                os.kill(os.getpid(), SEND["signal"])
            return F.binary_cross_entropy(model(batch["image"]), batch["mask"])

        card = {"data": cfg.data, "command": self.command()}
        return fit(trainer=self.name, model=model, optim=optim, dataset=TrainingSet(data, data.keys, 16, seed=cfg.seed),
                   loss=loss, config=cfg, card=card).checkpoint


class TinyPlugin:
    @salplug.hookimpl
    def salplug_register_trainers(self, register):
        register(TinyTrainer)


@pytest.fixture
def tiny_trainer():
    try:
        assert salplug.register_plugin(TinyPlugin(), name="tiny-loop-plugin").ok
        yield
    finally:
        SEND.clear()
        salplug.reload_plugins()


def _train_in_child(argv, step, signum):
    SEND.update(step=step, signal=signum)
    salplug.register_plugin(TinyPlugin(), name="tiny-loop-plugin")
    sys.exit(main(argv))


@pytest.mark.subprocess
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_run_stopped_by_a_signal_exits_128_plus_the_signal(folder, tmp_path, capfd, signum, code):
    out = tmp_path / "m.pt"
    argv = ["train", "tiny-loop", "--set", f"data={folder}", "--set", f"out={out}", "--set", "batch_size=3"]
    child = multiprocessing.get_context("spawn").Process(target=_train_in_child, args=(argv, 2, signum))
    child.start()
    child.join(300)
    assert child.exitcode == code
    assert f"interrupted by {signal.Signals(signum).name}" in capfd.readouterr().err
    assert state_path(out).exists() and TinyPrior().load_weights(out)["training"]["steps"] == 2


def test_resume_takes_the_stored_settings_and_refuses_each_change(tiny_trainer, folder, tmp_path, capsys):
    out = tmp_path / "m.pt"
    first = ["train", "tiny-loop", "--set", f"data={folder}", "--set", f"out={out}"]
    assert main([*first, "--set", "lr=0.05", "--set", "batch_size=4", "--set", "epochs=2", "--set", "max_steps=2"]) == 0
    assert main(["train", "tiny-loop", "--resume", "--set", f"out={out}", "--set", "lr=0.1", "--set", "batch_size=3"]) == 2
    err = capsys.readouterr().err
    assert "batch_size (state 4, now 3)" in err and "lr (state 0.05, now 0.1)" in err
    assert main(["train", "tiny-loop", "--resume", "--set", f"out={out}", "--set", "threads=1"]) == 0
    card = TinyPrior().load_weights(out)
    assert card["training"]["state"] == "finished" and card["training"]["steps"] == 6
    assert "lr=0.05" in card["command"] and "batch_size=4" in card["command"]


def test_the_card_names_the_config_file_and_sets_only_what_differs_from_it(tiny_trainer, folder, tmp_path, capsys):
    settings = tmp_path / "tiny.yaml"
    settings.write_text(f"out: {tmp_path / 'm.pt'}\nepochs: 1\nlr: 0.05\nbatch_size: 4\n")
    argv = ["train", "tiny-loop", "--config", str(settings), "--set", f"data={folder}", "--set", "batch_size=5"]
    assert main(argv) == 0
    words = shlex.split(TinyPrior().load_weights(tmp_path / "m.pt")["command"])
    assert words[:5] == ["salplug", "train", "tiny-loop", "--config", str(settings)]
    assert sorted(words[i + 1] for i, word in enumerate(words) if word == "--set") == ["batch_size=5", f"data={folder}"]
    assert main(["train", "tiny-loop", "--config", str(settings), "--set", f"data={folder}", "--show"]) == 0
    assert "lr: float = 0.05" in capsys.readouterr().out


@pytest.mark.subprocess
def test_a_corrupted_run_state_is_refused(folder, tmp_path):
    run_in_child(folder, tmp_path / "m.pt", interrupt_at=2)
    path = state_path(tmp_path / "m.pt")
    outer = torch.load(path, weights_only=True)
    outer["body"][len(outer["body"]) // 2] ^= 0xFF
    torch.save(outer, path)
    with pytest.raises(CheckpointError, match=r"m\.state\.pt is corrupted: expected sha256 .*, got"):
        run(folder, tmp_path / "m.pt", resume=True)


@pytest.mark.subprocess
def test_a_partial_last_log_line_does_not_break_resume(folder, tmp_path):
    run_in_child(folder, tmp_path / "m.pt", interrupt_at=2)
    log = tmp_path / "m.log.jsonl"
    log.write_text(log.read_text() + '{"step": 3, "epo')
    _, finished = run(folder, tmp_path / "m.pt", resume=True)
    assert finished.finished
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == list(range(1, 13))


def test_a_full_disk_during_a_save_names_the_device(folder, tmp_path, monkeypatch):
    import salplug.train._loop as loop

    def full(payload, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(loop, "write_payload", full)
    with pytest.raises(OSError, match=r"^no space left on .+ writing .*m\.state\.pt; the files of the last save"):
        run(folder, tmp_path / "m.pt", epochs=1)


class WiderPrior(TinyPrior):
    """The same component with 8 hidden channels instead of 4."""

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 1))


@pytest.mark.subprocess
def test_resume_with_another_architecture_is_one_line(folder, tmp_path):
    run_in_child(folder, tmp_path / "m.pt", interrupt_at=2)
    with pytest.raises(CheckpointError) as caught:
        run(folder, tmp_path / "m.pt", resume=True, model_cls=WiderPrior)
    message = str(caught.value)
    assert "\n" not in message and "another architecture" in message and "net.0.bias: expected (8,), got (4,)" in message


def test_unusable_pairs_are_listed_before_the_first_step_and_a_bad_photo_is_skipped(folder, tmp_path, capsys):
    (folder / "images" / "03.png").write_bytes(b"not a photo at all")
    write_png(folder / "masks" / "05.png", np.zeros((8, 8), np.uint8))
    whole = (folder / "images" / "07.png").read_bytes()
    (folder / "images" / "07.png").write_bytes(whole[:60])  # its header reads, its pixels do not
    _, done = run(folder, tmp_path / "m.pt", epochs=1)
    printed = capsys.readouterr()
    err = printed.out + printed.err
    assert "tiny: left out" in err and "03.png: unreadable" in err and "05.png: expected 20×24 like its photo, got 8×8" in err
    assert "tiny: skipped" in err and "07.png" in err
    card = TinyPrior().load_weights(tmp_path / "m.pt")
    assert len(card["training"]["left_out"]) == 2 and any("07.png" in s for s in card["training"]["skipped"])
    assert done.finished


def tiny_fit(folder, out, **options):
    torch.manual_seed(0)
    model = TinyPrior()
    optim = torch.optim.SGD(model.parameters(), lr=0.5)
    data = FolderDataset(folder, masks=True)
    config = LoopConfig(out=str(out), epochs=1, batch_size=5, workers=0, seed=1, **options)
    fit(trainer="tiny", model=model, optim=optim, dataset=TrainingSet(data, data.keys, 16, seed=1), config=config,
        loss=lambda batch: F.binary_cross_entropy(model(batch["image"]), batch["mask"]), card={})
    return model


def test_accumulated_parts_take_the_step_of_the_whole_batch(folder, tmp_path):
    whole = tiny_fit(folder, tmp_path / "one.pt")
    parts = tiny_fit(folder, tmp_path / "three.pt", accumulate=3)
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(parts.state_dict()[key], value, rtol=0, atol=1e-6)


def test_clipping_bounds_each_step(folder, tmp_path):
    torch.manual_seed(0)
    start = TinyPrior().state_dict()
    clipped = tiny_fit(folder, tmp_path / "c.pt", clip_grad_norm=1e-3)
    moved = torch.cat([(clipped.state_dict()[k] - v).flatten() for k, v in start.items()]).norm()
    assert 0 < moved <= 2 * 0.5 * 1e-3 + 1e-7  # two steps of lr 0.5 with a gradient norm of at most 1e-3
