"""examples/a2s_to_ldps.py: the A2S -> LDPS chain in plain Python runs on the sample photos."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from salplug.data import SAMPLES, read_map

pytest.importorskip("salplug_ldps", reason="the example chains salplug-ldps after A2S; install plugins/salplug-ldps")

SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "a2s_to_ldps.py"


def test_example_writes_both_steps_maps(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("a2s_to_ldps", SCRIPT)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    assert example.main(["--out", str(tmp_path), "--size", "96"]) == 0

    maps = {(step, name): read_map(tmp_path / step / f"{name}.png") for step in ("a2s", "ldps") for name in SAMPLES}
    assert all(m.shape == (96, 96) and m.max() > m.min() for m in maps.values())
    assert any(abs(maps["ldps", n] - maps["a2s", n]).mean() > 0.01 for n in SAMPLES), "LDPS changed nothing"
    printed = capsys.readouterr().out
    assert all(f"{name}: mean |ldps - a2s|" in printed for name in SAMPLES)
