"""Executable documentation: the marked code blocks of README.md, CONTRIBUTING.md and docs/ run as written.

A fenced block whose info string is ``python run`` or ``bash run`` is run; the Python blocks
of one document share a namespace, in order, like a notebook. A ``yaml file=PATH`` block
must equal that shipped file. Everything runs in a scratch folder laid out like a clone
(``main/`` with the repository's examples, plugins and ``tests/data``, ``shared/`` beside
it), so the commands' outputs never land in the repository.

Blocks may read ``tests/data``, the four-photo dataset that ships with the repository, on
every clone. A document whose runnable blocks name ``../shared/data`` carries the ``data``
and ``slow`` markers: it runs where the shared SOD data is, and is skipped, with the path,
elsewhere.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import salplug
from tests.shared_data import DATA, TESTS_DATA

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
DOCUMENTS = ("README.md", "CONTRIBUTING.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")))


def blocks(document: str) -> list[tuple[int, str, str, str]]:
    """(line, language, info, body) of every fenced block."""
    text = (ROOT / document).read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2).strip(), m.group(3)) for m in FENCE.finditer(text)]


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    main = tmp_path / "main"
    main.mkdir()
    for name in ("examples", "plugins"):
        (main / name).symlink_to(ROOT / name, target_is_directory=True)
    (main / "tests").mkdir()
    (main / "tests" / "data").symlink_to(TESTS_DATA, target_is_directory=True)
    if DATA.is_dir():
        (tmp_path / "shared").symlink_to(DATA.parent, target_is_directory=True)
    monkeypatch.chdir(main)
    yield main
    salplug.reload_plugins()


@pytest.mark.parametrize("document", DOCUMENTS)
def test_documents_mark_their_runnable_blocks(document):
    runnable = [b for b in blocks(document) if b[2] == "run"]
    assert runnable or document.startswith("docs/"), f"{document} marks no block as runnable"
    for line, language, info, _ in blocks(document):
        assert info in ("", "run") or info.startswith("file="), f"{document}:{line}: unknown block mark {info!r}"
        assert info != "run" or language in ("python", "bash"), f"{document}:{line}: only python and bash blocks run"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_file_blocks_equal_the_shipped_files(document):
    for line, _, info, body in blocks(document):
        if info.startswith("file="):
            path = ROOT / info.removeprefix("file=")
            assert body == path.read_text(encoding="utf-8"), f"{document}:{line}: block differs from {path}"


def reads_shared_data(document: str) -> bool:
    """Whether a runnable block of the document names the shared data (else tests/data stands in)."""
    return any("../shared/data" in body for _, _, info, body in blocks(document) if info == "run")


def test_the_scratch_clone_holds_tests_data(workspace):
    assert sorted(p.name for p in Path("tests/data/masks").iterdir()) == ["astronaut.png", "chelsea.png", "coffee.png", "rocket.png"]
    assert (Path("../shared/data").is_dir()) == DATA.is_dir()


@pytest.mark.subprocess
@pytest.mark.parametrize("document", [pytest.param(d, marks=[pytest.mark.data, pytest.mark.slow] * reads_shared_data(d)) for d in DOCUMENTS])
def test_runnable_blocks_run_as_written(document, workspace):
    namespace: dict = {"__name__": f"docs_{Path(document).stem.lower()}"}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for line, language, info, body in blocks(document):
        if info != "run":
            continue
        if language == "python":
            try:
                exec(compile(body, f"{document}:{line}", "exec"), namespace)
            except Exception as err:
                raise AssertionError(f"{document}: the python block at line {line} fails: {type(err).__name__}: {err}") from err
        else:
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", body], capture_output=True, text=True, env=env)
            assert done.returncode == 0, f"{document}: the bash block at line {line} fails:\n{done.stdout}\n{done.stderr}"
