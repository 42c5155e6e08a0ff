"""The `salplug` command: listings, directory runs and exit codes, called through `main`."""

from __future__ import annotations

import json
from collections.abc import Callable
from fnmatch import fnmatch

import cv2
import numpy as np
import pytest

import salplug
from salplug import get_host
from salplug.cli import main
from salplug.pipeline._spec import STEP_KINDS

SPEC = """\
steps:
  - {kind: prior, component: center}
  - {kind: postprocessor, component: median, name: smooth, config: {size: 3}}
"""


@pytest.fixture
def images(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    for i, (height, width) in enumerate([(10, 14), (10, 14), (7, 5)]):
        cv2.imwrite(str(root / f"im{i}.png"), np.full((height, width, 3), 40 * i, np.uint8))
    return root


def _spec(tmp_path, text=SPEC):
    path = tmp_path / "chain.yaml"
    path.write_text(text)
    return path


def test_plugins_lists_the_builtins_from_salplug(capsys):
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line.split() for line in lines if line.startswith("builtins"))
    assert row[1:4] == ["salplug", "0.1.0", "ok"]


def test_plugins_json_has_status_and_components(capsys):
    assert main(["plugins", "--json"]) == 0
    plugins = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert plugins["builtins"]["distribution"] == "salplug"
    assert plugins["builtins"]["status"] == "ok"
    assert "median" in plugins["builtins"]["components"]["postprocessor"]


def test_list_one_kind_shows_its_components_with_summaries(capsys):
    assert main(["list", "postprocessor"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line for line in out.splitlines()[1:]}
    assert {"median", "normalize"} <= set(rows)
    assert {line.split()[0] for line in rows.values()} == {"postprocessor"}
    assert rows["median"].split()[:3] == ["postprocessor", "median", "salplug"]
    assert "Median filter" in rows["median"]


def test_list_filters_by_glob_across_kinds(capsys):
    assert main(["list", "--json", "*ed*"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert ("postprocessor", "median") in [(r["kind"], r["name"]) for r in rows]
    assert all(fnmatch(r["name"], "*ed*") for r in rows)
    assert main(["list", "metric", "*ed*"]) == 1
    assert "no metric matches '*ed*'" in capsys.readouterr().err


def test_show_prints_every_option_with_type_default_and_description(capsys):
    assert main(["show", "postprocessors", "median"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("postprocessor median (salplug): Median filter")
    fields = [line for line in out.splitlines() if line and not line.startswith((" ", "postprocessor", "set "))]
    assert fields == ["size: int = 5", "max_elements: int = 33554432"]
    assert "    Odd window side in pixels." in out
    assert main(["show", "refiner", "ldpss"]) == 2
    assert "Did you mean 'ldps'" in capsys.readouterr().err
    assert main(["show", "gadget", "x"]) == 2
    assert "expected KIND to be one of" in capsys.readouterr().err


def test_run_writes_maps_and_exits_0(tmp_path, images, capsys):
    out = tmp_path / "out"
    code = main(["run", "--chain", str(_spec(tmp_path)), str(images), "-o", str(out), "--no-progress"])
    assert code == 0
    assert "3 written" in capsys.readouterr().out
    assert cv2.imread(str(out / "im0.png"), cv2.IMREAD_UNCHANGED).shape == (10, 14)
    assert cv2.imread(str(out / "im2.png"), cv2.IMREAD_UNCHANGED).shape == (7, 5)


def test_run_exits_1_on_a_corrupt_input_but_writes_the_rest(tmp_path, images, capsys):
    (images / "zzz.jpg").write_text("not an image")
    out = tmp_path / "out"
    argv = ["run", "--chain", str(_spec(tmp_path)), str(images), "-o", str(out), "--no-progress", "--save-steps"]

    assert main(argv) == 1

    captured = capsys.readouterr()
    assert "3 written" in captured.out and "1 failed" in captured.out
    assert f"{images / 'zzz.jpg'}: not a decodable image" in captured.err
    assert sorted(p.name for p in out.glob("*.png")) == ["im0.png", "im1.png", "im2.png"]
    assert (out / "steps" / "smooth" / "im2.png").is_file()


def test_unknown_component_exits_2_with_a_suggestion(tmp_path, images, capsys):
    spec = _spec(tmp_path, SPEC.replace("median", "medain"))
    assert main(["run", "--chain", str(spec), str(images), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("salplug: error: step 'smooth': unknown postprocessor 'medain'")
    assert "Did you mean 'median'?" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_config_field_exits_2_naming_step_and_field(tmp_path, images, capsys):
    spec = _spec(tmp_path, SPEC.replace("size: 3", "size: 4, radius: 2"))
    assert main(["run", "--chain", str(spec), str(images), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "step 'smooth'" in err
    assert "field 'size'" in err and "odd window size" in err
    assert "field 'radius'" in err


def test_bad_spec_shape_exits_2_naming_the_step(tmp_path, images, capsys):
    spec = _spec(tmp_path, "steps:\n  - {kind: prior, component: center, colour: red}\n")
    assert main(["run", "--chain", str(spec), str(images), "-o", str(tmp_path / "out")]) == 2
    assert "step 0 ('center'), field 'colour'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["run", "--chain", "x.yaml"],
        ["run", "--chain", "x.yaml", "in", "-o", "o", "--batch-size", "0"],
    ],
    ids=["no-command", "unknown-command", "missing-args", "bad-batch-size"],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["run", "--chian", "x.yaml", "in", "-o", "o"], "salplug run: error: unknown flag --chian; did you mean '--chain'?"),
        (["run", "in", "-o", "o", "--batch-szie=2"], "salplug run: error: unknown flag --batch-szie; did you mean '--batch-size'?"),
        (["list", "--jsno"], "salplug list: error: unknown flag --jsno; did you mean '--json'?"),
        (["--verison"], "salplug: error: unknown flag --verison; did you mean '--version'?"),
        (["baseline", "out-of-fold", "--data", "d", "-o", "o", "--overwirte"],
         "salplug baseline out-of-fold: error: unknown flag --overwirte; did you mean '--overwrite'?"),
        (["run", "in", "-o", "o", "--frobnicate"], "salplug run: error: unknown flag --frobnicate"),
    ],
    ids=["run", "run-with-value", "list", "salplug", "plugin-tool", "nothing-close"],
)
def test_an_unknown_flag_exits_2_naming_the_closest_flag_of_its_command(argv, line, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == line


def test_a_unique_prefix_of_a_flag_still_stands_for_it(capsys):
    assert main(["list", "prior", "--js"]) == 0
    assert {row["kind"] for row in json.loads(capsys.readouterr().out)} == {"prior"}


def test_arguments_after_a_double_dash_are_not_flags(capsys):
    assert main(["run", "in", "-o", "o", "--", "-x"]) == 2
    err = capsys.readouterr().err
    assert "-x" in err and "unknown flag" not in err


def test_unusable_device_exits_2(tmp_path, images, capsys):
    argv = ["run", "--chain", str(_spec(tmp_path)), str(images), "-o", str(tmp_path / "o"), "--device", "nowhere"]
    assert main(argv) == 2
    assert "--device: cannot use 'nowhere'" in capsys.readouterr().err


def test_schema_describes_the_median_size_field(tmp_path, capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    median = next(d for name, d in schema["$defs"].items() if name.endswith("Median__Config"))
    assert median["properties"]["size"]["minimum"] == 3

    target = tmp_path / "schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    assert json.loads(target.read_text()) == schema


def test_schema_has_one_step_variant_per_installed_component(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    steps = [d for d in schema["$defs"].values() if d.get("properties", {}).get("component", {}).get("const")]
    variants = {(d["properties"]["kind"]["const"], d["properties"]["component"]["const"]): d for d in steps}
    registries = get_host().registries
    assert set(variants) == {(kind, name) for kind in STEP_KINDS for name in registries[kind].entries}
    assert {("prior", "center"), ("prior", "given"), ("postprocessor", "median")} <= set(variants)
    assert "config" in variants[("prior", "given")]["required"]
    assert variants[("prior", "center")]["properties"]["config"]["default"] == {"sigma": 0.25}
    assert schema["properties"]["steps"]["minItems"] == 1
    assert schema["properties"]["version"]["const"] == 1
    assert {"minimum": 1, "type": "integer"} in schema["properties"]["micro_batch"]["anyOf"]


def test_schema_survives_a_config_without_json_form(capsys):
    class Hooked(salplug.Refiner):
        """Takes a Python callable, which JSON Schema cannot describe."""

        name = "hooked"

        class Config(salplug.ComponentConfig):
            hook: Callable[[int], int] = abs

    class Inline:
        @salplug.hookimpl
        def salplug_register_refiners(self, register):
            register(Hooked)

    try:
        assert salplug.register_plugin(Inline(), name="inline-schema").ok
        assert main(["schema"]) == 0
        defs = json.loads(capsys.readouterr().out)["$defs"]
        assert defs["RefinerHookedStep"]["properties"]["config"]["type"] == "object"
        assert "size" in next(d for n, d in defs.items() if n.endswith("Median__Config"))["properties"]
    finally:
        salplug.reload_plugins()


def test_plugins_shows_failed_and_disabled_plugins(monkeypatch, capsys):
    class Broken:
        @salplug.hookimpl
        def salplug_register_priors(self, register):
            raise RuntimeError("weights server unreachable")

    monkeypatch.setenv("SALPLUG_DISABLE_PLUGINS", "builtins")
    try:
        salplug.reload_plugins()
        salplug.register_plugin(Broken(), name="broken")
        assert main(["plugins"]) == 0
        out = capsys.readouterr().out
        header, *rows = out.split("\n\n")[0].splitlines()
        column = header.index("STATUS")
        status = {row.split()[0]: row[column:].split()[0] for row in rows}
        assert status["broken"] == "failed" and status["builtins"] == "disabled"
        assert "broken: salplug_register_priors failed: RuntimeError" in out
        assert "weights server unreachable" in out
    finally:
        monkeypatch.undo()
        salplug.reload_plugins()


def test_run_set_overrides_a_step_field_and_names_bad_settings(tmp_path, images, capsys):
    spec = str(_spec(tmp_path))
    plain, wide = tmp_path / "plain", tmp_path / "wide"
    assert main(["run", "--chain", spec, str(images), "-o", str(plain), "--no-progress"]) == 0
    assert main(["run", "--chain", spec, str(images), "-o", str(wide), "--no-progress", "--set", "smooth.size=9"]) == 0
    a = cv2.imread(str(plain / "im0.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(wide / "im0.png"), cv2.IMREAD_UNCHANGED)
    assert not np.array_equal(a, b), "a wider median must change the centre prior's 10×14 map"
    capsys.readouterr()

    assert main(["run", "--chain", spec, str(images), "-o", str(wide), "--set", "blur.size=3"]) == 2
    assert "expected STEP.FIELD with STEP one of center, smooth" in capsys.readouterr().err
    assert main(["run", "--chain", spec, str(images), "-o", str(wide), "--set", "smooth.size=4"]) == 2
    err = capsys.readouterr().err
    assert "smooth" in err and "size" in err and "odd" in err


def test_unreadable_documents_and_values_are_one_line_errors(tmp_path, images, capsys):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("steps:\n  - {kind: prior, component: center, name: caf\xe9}\n".encode("latin-1"))
    assert main(["run", "--chain", str(latin), str(images), "-o", str(tmp_path / "o")]) == 2
    assert "latin.yaml is not UTF-8 text (byte 0xe9" in capsys.readouterr().err
    spec = tmp_path / "c.yaml"
    spec.write_text("steps:\n  - {kind: prior, component: center}\n  - {kind: postprocessor, component: median}\n")
    for value, reason in [("median.size=[1, 2", "not plain YAML data"), ("median.size=!!python/object:os.system x", "not plain YAML data")]:
        assert main(["run", "--chain", str(spec), "--set", value, str(images), "-o", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert reason in err and "Traceback" not in err
    bad = tmp_path / "train.yaml"
    bad.write_text("epochs: [3\n")
    assert main(["train", "baseline", "--config", str(bad)]) == 2
    assert "train config" in capsys.readouterr().err


def test_set_takes_one_value_per_flag_so_inputs_after_it_are_inputs(tmp_path, images, capsys):
    spec = tmp_path / "c.yaml"
    spec.write_text("steps:\n  - {kind: prior, component: center}\n  - {kind: postprocessor, component: median, name: smooth}\n")
    out = tmp_path / "o"
    assert main(["run", "--chain", str(spec), "--set", "smooth.size=7", str(images), "-o", str(out)]) == 0
    assert json.loads((out / "salplug-run.json").read_text())["chain"]["steps"][1]["config"]["size"] == 7


def test_set_on_a_spec_with_repeated_unnamed_steps_keeps_every_step(tmp_path, images):
    spec = tmp_path / "c.yaml"
    spec.write_text("steps:\n  - {kind: prior, component: center}\n  - {kind: postprocessor, component: median, config: {size: 3}}\n"
                    "  - {kind: postprocessor, component: normalize}\n  - {kind: postprocessor, component: median, config: {size: 31}}\n")
    out = tmp_path / "o"
    assert main(["run", "--chain", str(spec), "--set", "median-2.size=5", str(images), "-o", str(out)]) == 0
    steps = json.loads((out / "salplug-run.json").read_text())["chain"]["steps"]
    assert [(s["name"], s["config"].get("size")) for s in steps] == [("center", None), ("median", 3), ("normalize", None), ("median-2", 5)]


def test_a_learned_step_without_weights_is_a_loud_warning(tmp_path, images, capsys):
    spec = tmp_path / "untrained.yaml"
    spec.write_text("steps:\n  - {kind: prior, component: baseline, name: net, "
                    "config: {checkpoint: null, backbone_weights: null, size: 32, channels: 8}}\n")
    assert main(["run", "--chain", str(spec), str(images), "-o", str(tmp_path / "o"), "--no-progress"]) == 0
    assert "salplug: warning: step 'net' (prior 'baseline') has no trained weights (checkpoint: null)" in capsys.readouterr().err


def test_ctrl_c_during_eval_exits_130_with_one_line_after_the_pairing(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("salplug.cli._eval.score_folder", interrupted)
    root = tmp_path / "set"
    for sub in ("images", "masks", "priors/p"):
        (root / sub).mkdir(parents=True)
        cv2.imwrite(str(root / sub / "a.png"), np.zeros((8, 8), np.uint8))
    assert main(["eval", "--dataset", str(root), "--priors", "p"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("pairing") and "Traceback" not in err
    assert err.splitlines()[-1].startswith("salplug: interrupted")


def test_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    import os
    import sys

    read, write = os.pipe()
    os.close(read)
    stream = open(write, "w")
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        assert main(["schema"]) == 0
    finally:
        stream.close()
    assert capsys.readouterr().err == ""
