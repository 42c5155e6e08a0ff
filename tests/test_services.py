"""Services the core gives plugins: shipped checkpoints, learned components, images as arrays, superpixels,
and tools registered as ``salplug PLUGIN TOOL`` commands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import salplug
from salplug.cli import main
from salplug.components import (
    SHIPPED,
    ComponentConfig,
    Learned,
    Refiner,
    checkpoint_file,
    seeded,
    shipped_checkpoint,
)
from salplug.data import read_image, write_png
from salplug.errors import CheckpointError, SalplugError
from salplug.host import Command, view_command
from salplug.ops import superpixels, to_hwc


@pytest.fixture
def package(tmp_path, monkeypatch):
    """An importable package ``shipper`` with one file under ``checkpoints/``."""
    root = tmp_path / "site" / "shipper"
    (root / "checkpoints").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "checkpoints" / "net.pt").write_bytes(b"weights")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "shipper", raising=False)
    return root


def test_shipped_checkpoint_is_the_file_installed_with_the_package(package):
    assert shipped_checkpoint("shipper", "net.pt") == package / "checkpoints" / "net.pt"


def test_a_missing_shipped_checkpoint_names_the_path_and_what_to_do(package):
    with pytest.raises(CheckpointError, match=r"refiner 'x': expected a shipped checkpoint at .*absent\.pt, "
                                              r"got none installed; train one"):
        shipped_checkpoint("shipper", "absent.pt", owner="refiner 'x'", hint="train one")


def test_checkpoint_file_resolves_tags_paths_and_none(package, tmp_path):
    assert checkpoint_file(None, "shipper", "net.pt") is None
    assert checkpoint_file(SHIPPED, "shipper", "net.pt") == package / "checkpoints" / "net.pt"
    assert checkpoint_file("fold0", "shipper", {"fold0": "net.pt"}) == package / "checkpoints" / "net.pt"
    assert checkpoint_file(str(tmp_path / "mine.pt"), "shipper", "net.pt") == tmp_path / "mine.pt"
    with pytest.raises(CheckpointError, match="absent.pt"):
        checkpoint_file("fold1", "shipper", {"fold1": "absent.pt"})


class Tiny(Learned, Refiner):
    """A learned refiner whose width comes from its checkpoint."""

    name = "tiny-learned"
    defaults = {"width": 4}
    shaped = ("width",)
    frozen = ("encoder",)

    class Config(ComponentConfig):
        checkpoint: str | None = None
        width: int | None = None
        seed: int = 0

    def build(self, arch: dict[str, Any]) -> None:
        with seeded(self.config.seed):
            self.encoder = nn.Sequential(nn.Conv2d(3, arch["width"], 1), nn.BatchNorm2d(arch["width"]))
            self.head = nn.Conv2d(arch["width"], 1, 1)

    def forward(self, image, saliency):
        return torch.sigmoid(self.head(self.encoder(image)))


def test_a_learned_component_takes_its_architecture_and_weights_from_the_checkpoint(tmp_path):
    trained = Tiny(width=6, seed=3)
    path = trained.save_weights(tmp_path / "tiny.pt", card={"data": "d"})
    loaded = Tiny(checkpoint=str(path))
    assert loaded.arch == {"width": 6} and loaded.config.width == 6 and loaded.card == {"data": "d"}
    assert loaded.weights_from == path and not loaded.training
    assert torch.equal(loaded.head.weight, trained.head.weight)
    with pytest.raises(CheckpointError, match="width=6, got width=5"):
        Tiny(checkpoint=str(path), width=5)
    untrained = Tiny()
    assert untrained.arch == {"width": 4} and untrained.card == {} and untrained.untrained


def test_a_learned_components_build_is_seeded_and_leaves_the_callers_random_state():
    torch.manual_seed(0)
    first = Tiny(seed=1)
    drawn = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(3), drawn)
    assert torch.equal(Tiny(seed=1).head.weight, first.head.weight)


def test_frozen_parts_of_a_learned_component_stay_in_eval_mode():
    model = Tiny().train()
    assert model.training and model.head.training and not model.encoder.training


def test_to_hwc_is_channel_last_clamped_contiguous_numpy():
    image = torch.linspace(-0.5, 1.5, 2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    array = to_hwc(image)
    assert array.shape == (2, 4, 5, 3) and array.dtype == np.float32 and array.flags["C_CONTIGUOUS"]
    assert np.array_equal(array, image.clamp(0, 1).permute(0, 2, 3, 1).numpy())
    assert to_hwc(image, torch.float64).dtype == np.float64


def test_superpixels_are_consecutive_labels_of_the_image():
    image = np.zeros((40, 60, 3))
    image[:, 30:] = [1.0, 0.2, 0.1]
    labels = superpixels(image, 12, 10.0)
    assert labels.shape == (40, 60)
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    assert not set(np.unique(labels[:, :25])) & set(np.unique(labels[:, 35:]))  # no segment crosses the edge


def greet_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--times", type=int, default=1)


def greet(args: argparse.Namespace) -> int:
    if args.times < 0:
        raise SalplugError(f"--times: expected 0 or more, got {args.times}")
    print("hello " * args.times)
    return 3 if args.times == 3 else 0


class Greeter:
    @salplug.hookimpl
    def salplug_register_commands(self, register):
        register(Command("greet", "say hello", greet_arguments, greet))


@pytest.fixture
def registered():
    """Plugins registered in Python for one test, forgotten after it."""
    try:
        yield salplug.register_plugin
    finally:
        salplug.reload_plugins()


def test_a_registered_command_is_a_subcommand_that_runs(registered, capsys):
    info = registered(Greeter(), name="greeter")
    assert info.ok and info.commands == ["greet"]
    assert main(["greeter", "greet", "--times", "2"]) == 0
    assert capsys.readouterr().out.startswith("hello hello")
    assert main(["greeter", "greet", "--times", "3"]) == 3
    assert main(["greeter", "greet", "--times", "-1"]) == 2
    assert "salplug: error: --times: expected 0 or more, got -1" in capsys.readouterr().err
    assert main(["plugins"]) == 0
    assert "command: greet" in capsys.readouterr().out


def test_a_plugin_without_its_tool_name_is_a_usage_error(registered, capsys):
    registered(Greeter(), name="greeter")
    assert main(["greeter"]) == 2
    assert "TOOL" in capsys.readouterr().err
    assert main(["greeter", "--help"]) == 0
    assert "greet" in capsys.readouterr().out


def test_a_command_runs_from_python_without_the_salplug_parser(capsys):
    assert Command("greet", "say hello", greet_arguments, greet).main(["--times", "1"]) == 0
    assert capsys.readouterr().out.strip() == "hello"


def test_a_bad_command_registration_is_the_plugins_error(registered):
    class Broken:
        @salplug.hookimpl
        def salplug_register_commands(self, register):
            register(Command("Bad Name", "x", greet_arguments, greet))

    info = registered(Broken(), name="broken")
    assert not info.ok and "must be lower-case" in info.errors[0] and info.commands == []

    class NotACommand:
        @salplug.hookimpl
        def salplug_register_commands(self, register):
            register(greet)

    assert "expected a salplug.host.Command" in registered(NotACommand(), name="loose").errors[0]


def test_a_plugin_named_like_a_core_command_has_its_tools_left_out(registered, capsys):
    info = registered(Greeter(), name="eval")
    assert main(["plugins"]) == 0
    assert "'eval' is a salplug command" in info.errors[0]
    assert main(["eval", "greet"]) == 2  # still the core's eval


def test_the_view_command_links_the_chosen_images_masks_and_priors(tmp_path, capsys):
    data, maps = tmp_path / "data", tmp_path / "maps"
    for stem in ("a", "b", "c"):
        write_png(data / "images" / f"{stem}.png", np.full((4, 4, 3), 100, np.uint8))
        write_png(data / "masks" / f"{stem}.png", np.full((4, 4), 255, np.uint8))
        write_png(maps / f"{stem}.png", np.full((4, 4), 128, np.uint8))

    def last(parser):
        parser.add_argument("--count", type=int, default=1)

    def select(args):
        dataset = salplug.data.FolderDataset(data, masks=True)
        return dataset, dataset.keys[-args.count:]

    command = view_command("view", "the last images", add_arguments=last, select=select, what="last images of {data}")
    out = tmp_path / "view"
    assert command.main(["--data", str(data), "--count", "2", "--priors", f"base={maps}", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"linked 2 last images of {data} into {out}"
    assert sorted(p.stem for p in (out / "images").iterdir()) == ["b", "c"]
    assert sorted(p.stem for p in (out / "priors" / "base").iterdir()) == ["b", "c"]
    assert read_image(out / "images" / "b.png").shape == (4, 4, 3)
    with pytest.raises(SalplugError, match="--priors: expected NAME=FOLDER, got 'base'"):
        command.main(["--data", str(data), "--priors", "base", "-o", str(out)])
