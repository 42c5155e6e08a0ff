"""Ray is optional: the core never imports it, and `--engine ray` without it says how to install it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from salplug.cli import main
from salplug.data._io import write_png


@pytest.mark.subprocess
def test_the_core_and_the_cli_never_import_ray():
    code = (
        "import sys, salplug, salplug.cli, salplug.train._loop, salplug.metrics._evaluation, salplug.pipeline._runner\n"
        "salplug.cli.main(['list'])\n"
        "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ray'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_engine_ray_without_ray_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    image = tmp_path / "in" / "a.png"
    write_png(image, np.zeros((8, 8, 3), np.uint8))
    spec = tmp_path / "c.yaml"
    spec.write_text("version: 1\nsteps:\n  - {kind: prior, component: center}\n")
    code = main(["run", "--chain", str(spec), str(image.parent), "-o", str(tmp_path / "out"), "--engine", "ray",
                 "--no-progress"])
    assert code == 2
    assert "pip install 'salplug[ray]'" in capsys.readouterr().err


def test_ray_options_without_engine_ray_are_refused(tmp_path, capsys):
    spec = tmp_path / "c.yaml"
    spec.write_text("version: 1\nsteps:\n  - {kind: prior, component: center}\n")
    assert main(["run", "--chain", str(spec), str(tmp_path), "-o", str(tmp_path / "o"), "--workers", "2"]) == 2
    assert "--workers: only used with --engine ray" in capsys.readouterr().err


def test_a_uri_output_needs_engine_ray(tmp_path, capsys):
    spec = tmp_path / "c.yaml"
    spec.write_text("version: 1\nsteps:\n  - {kind: prior, component: center}\n")
    assert main(["run", "--chain", str(spec), str(tmp_path), "-o", "s3://bucket/maps"]) == 2
    assert "a filesystem URI needs --engine ray" in capsys.readouterr().err
