"""Data-parallel training: 2 gloo processes end with the weights of 1 process at the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

import salplug
from salplug.data._datasets import FolderDataset
from salplug.train import _parallel as data_parallel
from salplug.train._parallel import Group, shard
from salplug.data._io import write_png
from salplug.train._data import EpochBatches, TrainingSet
from salplug.train._loop import LoopConfig, fit


class TinyPrior(salplug.PriorProvider):
    name = "tiny-parallel"

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1))

    def forward(self, image, keys=None):
        return torch.sigmoid(self.net(image))


def make_folder(root: Path, count: int = 11) -> Path:
    rng = np.random.default_rng(1)
    for i in range(count):
        image = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
        mask = np.zeros((20, 24), np.uint8)
        mask[4:16, 3 + i : 12 + i] = 255
        image[mask > 0] //= 2
        write_png(root / "images" / f"{i:02d}.png", image)
        write_png(root / "masks" / f"{i:02d}.png", mask)
    return root


def train(folder: Path, out: Path) -> dict[str, torch.Tensor]:
    """A tiny run of `fit`: 11 images, batch 4 (so the last batch of each epoch has 3), SGD with momentum."""
    torch.manual_seed(0)
    model = TinyPrior()
    optim = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    data = FolderDataset(folder, masks=True)
    dataset = TrainingSet(data, data.keys, 16, crop=0.7, hflip=True, seed=5)

    def loss(batch):
        return F.binary_cross_entropy(model(batch["image"]), batch["mask"])

    config = LoopConfig(out=str(out), epochs=2, batch_size=4, workers=0, seed=5, threads=1)
    fit(trainer="tiny", model=model, optim=optim, dataset=dataset, loss=loss, config=config, card={})
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _rank(rank: int, world: int, port: int, folder: str, out: str, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        results[rank] = train(Path(folder), Path(out))
    except BaseException:
        data_parallel.finish(wait=False)
        raise
    data_parallel.finish()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shards_cover_a_batch_once_with_sizes_within_one():
    for size in range(1, 12):
        for world in (1, 2, 3):
            parts = [shard(size, Group(r, world)) for r in range(world)]
            covered = [i for a, b in parts for i in range(a, b)]
            assert covered == list(range(size))
            assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1


def test_a_rank_with_nothing_in_a_short_batch_still_gets_a_sample():
    batches = [list(EpochBatches(5, 0, 0, 4, group=Group(r, 2))) for r in range(2)]
    assert [len(b) for b in batches[0]] == [2, 1] and [len(b) for b in batches[1]] == [2, 1]
    assert batches[1][1] == batches[0][1]  # the padded sample is the batch's first, weighted 0 by the loop
    whole = [i for b in EpochBatches(5, 0, 0, 4) for _, i in b]
    assert [i for r in range(2) for b in batches[r][:1] for _, i in b] == whole[:4]


@pytest.mark.subprocess
def test_two_gloo_processes_end_with_the_weights_of_one(tmp_path):
    folder = make_folder(tmp_path / "data")
    single = train(folder, tmp_path / "one" / "m.pt")
    results = mp.Manager().dict()
    mp.start_processes(_rank, args=(2, _free_port(), str(folder), str(tmp_path / "two" / "m.pt"), results),
                       nprocs=2, join=True, start_method="spawn")
    for rank in (0, 1):
        for key, value in single.items():
            torch.testing.assert_close(results[rank][key], value, rtol=0, atol=1e-5)
    card = TinyPrior().load_weights(tmp_path / "two" / "m.pt")
    assert card["training"]["processes"] == 2 and card["training"]["steps"] == 6
    assert (tmp_path / "two" / "m.log.jsonl").read_text().count("\n") == 6


@pytest.mark.subprocess
def test_cli_nproc_launches_torchrun_and_matches_one_process(tmp_path):
    folder = make_folder(tmp_path / "data", count=9)
    common = ["train", "baseline", "--set", f"data={folder}", "--set", "size=64", "--set", "epochs=1",
              "--set", "batch_size=4", "--set", "workers=0", "--set", "threads=1", "--set", "folds=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "salplug", *common, "--set", f"out={tmp_path / 'one.pt'}"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "salplug", *common, "--set", f"out={tmp_path / 'two.pt'}", "--nproc", "2"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr
    assert "launching 2 processes" in two.stdout and two.stdout.count("training baseline:") == 1
    a = torch.load(tmp_path / "one.pt", weights_only=False)
    b = torch.load(tmp_path / "two.pt", weights_only=False)
    weights_a, weights_b = a["state_dict"], b["state_dict"]
    assert weights_a.keys() == weights_b.keys()
    for key, value in weights_a.items():
        torch.testing.assert_close(weights_b[key].float(), value.float(), rtol=0, atol=2e-3)


def test_nproc_is_refused_for_a_trainer_off_the_loop(capsys):
    from salplug.cli import main

    assert main(["train", "mijr", "--nproc", "2"]) == 2
    assert "--nproc needs a trainer that runs on salplug.train._loop" in capsys.readouterr().err


@pytest.mark.parametrize(("env", "message"), [
    ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 says this is one of 2 torchrun processes, but RANK, MASTER_ADDR and MASTER_PORT are not set"),
    ({"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "127.0.0.1"}, "but MASTER_PORT is not set"),
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE: expected the number of processes torchrun started, got 'two'"),
])
def test_a_stale_torchrun_environment_is_one_line_before_training(monkeypatch, tmp_path, capsys, env, message):
    from salplug.cli import main

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    data, out = make_folder(tmp_path / "data", count=2), tmp_path / "lps.pt"
    assert main(["train", "lps", "--set", f"data={data}", "--set", f"out={out}", "--set", "epochs=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists() and not dist.is_initialized()


@pytest.mark.parametrize("flag", ["--nproc=2", "--nproc"])
def test_nproc_is_dropped_from_the_relaunched_command(flag, monkeypatch, tmp_path):
    from salplug.cli import _app as cli

    seen = {}

    def fake_run(command, check):
        seen["command"] = command
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    data = make_folder(tmp_path / "data", count=2)
    argv = ["train", "lps", "--set", f"data={data}", *([flag] if "=" in flag else [flag, "2"])]
    assert cli.main(argv) == 0
    command = seen["command"]
    assert command[command.index("salplug"):] == ["salplug", "train", "lps", "--set", f"data={data}"]
    assert "--nproc-per-node=2" in command


@pytest.mark.parametrize("name", ["a2s-stage1", "a2s", "ldps", "lps", "baseline"])
def test_nproc_launches_every_trainer_on_the_loop(name, monkeypatch, tmp_path):
    from salplug.cli import _app as cli

    seen = {}
    monkeypatch.setattr(cli.subprocess, "run",
                        lambda command, check: seen.setdefault("command", command) and subprocess.CompletedProcess(command, 0))
    data = make_folder(tmp_path / "data", count=2)
    settings = {"a2s-stage1": [f"images=[{data / 'images'}]"], "a2s": [f"images=[{data / 'images'}]"],
                "ldps": [f"data={data}", f"priors=[{data / 'masks'}]"]}.get(name, [f"data={data}"])
    argv = ["train", name, "--nproc", "2", *(word for s in settings for word in ("--set", s))]
    assert cli.main(argv) == 0
    assert "--nproc-per-node=2" in seen["command"] and name in seen["command"]
