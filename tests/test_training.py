"""Trainers: registered like components, configured by fields, run by `salplug train`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import Field

import salplug
from salplug.cli import main
from salplug.testing import ConformanceError, check_component


class CountTo(salplug.Trainer):
    """Writes the numbers up to `steps` into `out`: a job small enough to run in a test."""

    name = "count-to"

    class Config(salplug.ComponentConfig):
        out: Path = Field(description="File to write.")
        steps: int = Field(default=2, ge=1, description="How far to count.")
        folders: list[str] = Field(default_factory=list, description="Echoed into the file.")

    def run(self) -> Path:
        self.config.out.write_text(json.dumps({"counted": list(range(self.config.steps)), "folders": self.config.folders}))
        return self.config.out


class Plugin:
    @salplug.hookimpl
    def salplug_register_trainers(self, register):
        register(CountTo)


@pytest.fixture
def registered():
    try:
        info = salplug.register_plugin(Plugin(), name="counting")
        assert info.ok and info.components == {"trainer": ["count-to"]}
        yield
    finally:
        salplug.reload_plugins()


def test_train_sets_fields_from_yaml_values_and_runs_the_job(registered, tmp_path, capsys):
    out = tmp_path / "result.json"
    config = tmp_path / "train.yaml"
    config.write_text(f"out: {out}\nsteps: 9\n")
    assert main(["train", "count-to", "--config", str(config), "--set", "steps=3", "--set", "folders=[a, b c]"]) == 0
    assert json.loads(out.read_text()) == {"counted": [0, 1, 2], "folders": ["a", "b c"]}
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "--set steps=3" in printed


def test_the_recorded_command_rebuilds_the_same_config(registered, tmp_path):
    trainer = salplug.build("trainer", "count-to", out=tmp_path / "x.json", steps=4, folders=["p q", "r"])
    words = __import__("shlex").split(trainer.command())
    assert words[:3] == ["salplug", "train", "count-to"]
    assert main(words[1:]) == 0
    assert json.loads((tmp_path / "x.json").read_text()) == {"counted": [0, 1, 2, 3], "folders": ["p q", "r"]}


def test_resume_is_refused_for_a_trainer_without_a_run_state(registered, tmp_path, capsys):
    assert main(["train", "count-to", "--resume", "--set", f"out={tmp_path / 'o'}"]) == 2
    assert ("train count-to: --resume needs a trainer that runs on salplug.train._loop or has its own 'resume' "
            "field") in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bad_field_names_the_trainer_and_field(registered, tmp_path, capsys):
    assert main(["train", "count-to", "--set", f"out={tmp_path / 'o'}", "--set", "stepz=3"]) == 2
    err = capsys.readouterr().err
    assert "count-to" in err and "stepz" in err
    assert main(["train", "count-to", "--set", "steps"]) == 2
    assert "expected --set FIELD=VALUE, got 'steps'" in capsys.readouterr().err


@pytest.mark.parametrize(("device", "expected"), [
    ("meta", "expected a device that computes (cpu, cuda, mps), got 'meta'"),
    ("gpu:zero", "expected a torch device such as cpu or cuda:0, got 'gpu:zero'"),
])
def test_a_trainer_on_a_device_that_cannot_compute_is_refused_before_work(tmp_path, capsys, device, expected):
    out = tmp_path / "w.pt"
    argv = ["train", "baseline", "--set", f"data={tmp_path}", "--set", f"out={out}", "--set", f"device={device}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "field 'device'" in err and expected in err, err
    assert not out.exists()


def test_show_lists_fields_and_bare_train_lists_trainers(registered, capsys):
    assert main(["train", "count-to", "--show"]) == 0
    shown = capsys.readouterr().out
    assert "out" in shown and "(required)" in shown and "How far to count." in shown
    assert main(["train"]) == 0
    assert "count-to" in capsys.readouterr().out.split()
    assert main(["list", "trainer"]) == 0
    assert "count-to" in capsys.readouterr().out


def test_unknown_trainer_names_what_is_installed(registered, capsys):
    assert main(["train", "count-too"]) == 2
    err = capsys.readouterr().err
    assert "unknown trainer 'count-too'" in err and "count-to" in err


def test_conformance_kit_checks_a_trainers_registration_and_config(tmp_path):
    check_component(CountTo, {"out": str(tmp_path / "o")})

    class Loose(CountTo):
        name = "loose"

        class Config(CountTo.Config):
            model_config = {"extra": "allow", "frozen": True}

    with pytest.raises(ConformanceError, match="extra='forbid'"):
        check_component(Loose, {"out": str(tmp_path / "o")})
