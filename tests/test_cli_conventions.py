"""The CLI's conventions across commands: trainer listings, wrapped fields, plain summaries, defaults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import salplug
from salplug.cli import main
from salplug.components import INPUT_MARK
from salplug.host._factory import get_component


def test_train_alone_lists_every_trainer_with_its_summary(capsys):
    assert main(["train"]) == 0
    out = capsys.readouterr().out
    for name in salplug.list_components("trainer"):
        row = next(line for line in out.splitlines() if line.split()[:1] == [name])
        assert len(row.split()) > 3, f"no summary for {name}: {row!r}"


def test_show_fits_the_terminal_and_describes_every_field(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    for name in salplug.list_components("trainer"):
        assert main(["train", name, "--show"]) == 0
        out = capsys.readouterr().out
        assert max(len(line) for line in out.splitlines()) <= 60
        assert "(no description)" not in out, f"trainer {name} has undescribed fields"


@pytest.mark.parametrize("name", ["a2s", "a2s-stage1", "baseline", "ldps", "lps", "mijr"])
def test_no_trainer_default_points_into_tmp(name):
    cls = get_component("trainer", name)
    defaults = json.dumps(cls.Config().model_dump(mode="json"))
    assert "/tmp" not in defaults


@pytest.mark.parametrize("name", ["a2s", "a2s-stage1", "baseline", "ldps", "lps", "mijr"])
def test_no_trainer_default_reaches_outside_the_repository_or_names_the_report_set(name, monkeypatch):
    monkeypatch.delenv("SALPLUG_DATA", raising=False)
    defaults = json.dumps(get_component("trainer", name).Config().model_dump(mode="json"))
    assert "sod-dev" not in defaults and "../" not in defaults and "shared/data" not in defaults


def test_training_data_comes_from_salplug_data_or_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SALPLUG_DATA", raising=False)
    assert main(["train", "baseline", "--set", f"out={tmp_path}/m.pt"]) == 2
    err = capsys.readouterr().err
    assert "field 'data': $SALPLUG_DATA/duts-tr names $SALPLUG_DATA, which is not set" in err and "--set data=" in err
    monkeypatch.setenv("SALPLUG_DATA", str(tmp_path / "sets"))
    assert get_component("trainer", "baseline")().config.data == str(tmp_path / "sets" / "duts-tr")
    assert main(["train", "baseline", "--set", f"out={tmp_path}/m.pt"]) == 2
    assert f"{tmp_path / 'sets' / 'duts-tr'} does not exist" in capsys.readouterr().err


def test_a_missing_trainer_input_names_the_field_and_how_to_make_it(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    assert main(["train", "ldps", "--set", f"data={tmp_path}", "--set", f"priors=[{tmp_path / 'maps'}]"]) == 2
    err = capsys.readouterr().err
    assert (f"trainer 'ldps', field 'priors': {tmp_path / 'maps'} does not exist; make them with: "
            "salplug baseline out-of-fold") in err
    info = get_component("trainer", "ldps").Config.model_fields["priors"]
    assert INPUT_MARK in info.json_schema_extra


def test_component_summaries_are_plain_text(capsys):
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all("`" not in row["summary"] for row in rows)


def test_resume_continues_from_the_state_file_or_says_which_is_missing(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    out = tmp_path / "run" / "b.pt"
    assert main(["train", "baseline", "--resume", "--set", f"data={data}", "--set", f"out={out}"]) == 2
    assert f"run state {tmp_path / 'run' / 'b.state.pt'} does not exist (resume needs" in capsys.readouterr().err
    assert main(["train", "a2s", "--resume", "--set", f"out={tmp_path / 'a' / 'a.pt'}"]) == 2
    captured = capsys.readouterr()
    assert f"run state {tmp_path / 'a' / 'a.state.pt'} does not exist (resume needs" in captured.err
    assert "images at" not in captured.out  # refused before any image is loaded
    assert main(["train", "a2s-stage1", "--resume", "--set", f"out={tmp_path / 's' / 's.pt'}"]) == 2
    captured = capsys.readouterr()
    assert f"run state {tmp_path / 's' / 's.state.pt'} does not exist (resume needs" in captured.err
    assert "images at" not in captured.out


def test_metric_names_are_case_insensitive_and_a_typo_names_the_close_one(capsys):
    from tests.shared_data import TESTS_DATA

    assert main(["eval", "--dataset", str(TESTS_DATA), "--priors", "good", "--metrics", "MAE,SMeasure", "--no-progress"]) == 0
    metrics_row = capsys.readouterr().out.split("\n")[2]
    assert [c.strip() for c in metrics_row.split("|")[1:-1]] == ["", "Sm↑", "MAE↓"]
    assert main(["eval", "--dataset", str(TESTS_DATA), "--priors", "good", "--metrics", "smeasur", "--no-progress"]) == 2
    assert "Did you mean 'smeasure'" in capsys.readouterr().err


def test_a_trainer_left_with_no_samples_says_why_in_one_line(tmp_path, capsys):
    """Four photos and the default 300 held out leave nothing to train on: exit 2 and a one-line reason."""
    data = tmp_path / "data"
    shutil.copytree(Path(__file__).parent / "data" / "images", data / "images")
    shutil.copytree(Path(__file__).parent / "data" / "masks", data / "masks")
    assert main(["train", "lps", "--set", f"data={data}", "--set", f"out={tmp_path / 'lps.pt'}"]) == 2
    err = capsys.readouterr().err
    assert "lps: expected training samples, got none" in err and "held out for validation" in err
    assert "Traceback" not in err
