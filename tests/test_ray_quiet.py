"""`run --engine ray` prints salplug's own output only: none of Ray's start-up lines that read like failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from shared_data import TESTS_DATA

pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'salplug[ray]')")

pytestmark = [pytest.mark.ray, pytest.mark.subprocess, pytest.mark.slow]


def test_a_ray_run_prints_neither_the_token_notice_nor_the_core_worker_error(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"steps": [{"kind": "prior", "component": "center"}]}))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_BACKEND_LOG_LEVEL", "RAY_AUTH_MODE", "RAY_ADDRESS")}
    done = subprocess.run(
        [sys.executable, "-m", "salplug", "run", "--chain", str(spec), str(TESTS_DATA / "images" / "rocket.png"),
         "-o", str(tmp_path / "maps"), "--engine", "ray", "--workers", "1", "--no-progress"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "maps" / "rocket.png").is_file()
    for noise in ("core_worker.cc", "max_restarts", "Token authentication"):
        assert noise not in done.stderr, done.stderr
