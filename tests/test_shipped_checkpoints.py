"""Every checkpoint a plugin ships is installed with it, and scores what its README publishes.

A shipped checkpoint is any file under ``plugins/*/salplug_*/checkpoints/``. It must be
reachable through the installed package (``importlib.resources``), it must land in the
plugin's wheel (its ``package-data``), and on sod-dev (``data``) it must reproduce the
figures of its plugin README's Results table to 1e-4, scored through the same machinery
as ``salplug eval``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pytest

import salplug
from salplug.data._datasets import SODDataset
from salplug.metrics._evaluation import score_chain
from tests.shared_data import SOD_DEV

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in ROOT.glob("plugins/*/salplug_*/checkpoints/*") if p.is_file())


def package_of(path: Path) -> str:
    return path.parent.parent.name


def distribution_dir(path: Path) -> Path:
    return path.parent.parent.parent


def test_plugins_ship_checkpoints():
    assert len(SHIPPED) >= 7, f"expected the seven shipped checkpoints, found {[p.name for p in SHIPPED]}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_each_shipped_checkpoint_is_in_the_installed_package(path):
    installed = resources.files(package_of(path)) / "checkpoints" / path.name
    assert installed.is_file(), f"{package_of(path)} is installed without checkpoints/{path.name}"
    assert installed.read_bytes()[:4096] == path.read_bytes()[:4096], f"installed {path.name} differs from the repository's"


PLUGINS = sorted({distribution_dir(p) for p in SHIPPED})


def wheel_prefix(plugin: Path) -> str:
    """How the plugin's wheel file name starts: its distribution name, normalised, and a dash."""
    name = tomllib.loads((plugin / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    return re.sub(r"[-_.]+", "_", name).lower() + "-"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    """The wheels of every plugin that ships checkpoints, built from copies of their folders by one ``pip wheel``."""
    root = tmp_path_factory.mktemp("wheels")
    ignore = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__")
    sources = [shutil.copytree(plugin, root / plugin.name, ignore=ignore) for plugin in PLUGINS]
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
               "--wheel-dir", str(root / "dist"), *map(str, sources)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"pip wheel of {', '.join(p.name for p in PLUGINS)} failed:\n{done.stdout}\n{done.stderr}"
    return root / "dist"


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_each_plugin_wheel_carries_its_checkpoints(plugin, wheels):
    """A wheel built from the plugin's pyproject holds every file of its checkpoints/ folder."""
    (wheel,) = (w for w in wheels.glob("*.whl") if w.name.startswith(wheel_prefix(plugin)))
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in SHIPPED:
        if distribution_dir(path) == plugin:
            member = f"{package_of(path)}/checkpoints/{path.name}"
            assert member in names, f"{wheel.name} lacks {member}: add it to [tool.setuptools.package-data]"


# --- published figures ------------------------------------------------------------------

COLUMNS = {  # README column headings, and the "a / b / c / d" cells' order, as score keys
    "MAE": "mae", "MAE ↓": "mae", "adpF": "adp_f", "adaptive F ↑": "adp_f", "meanF": "mean_f", "mean F ↑": "mean_f",
    "maxF": "max_f", "max F ↑": "max_f", "S": "sm", "S-measure ↑": "sm", "adpE": "adp_e", "maxE": "max_e",
    "wF": "wfm", "IoU": "adp_iou",
}
SLASHED = ("mae", "adp_f", "max_f", "sm")  # "MAE ↓ / adaptive F ↑ / max F ↑ / S-measure ↑" cells of ldps and lps


def tables(readme: Path) -> list[tuple[list[str], list[list[str]]]]:
    """(headings, rows) of every Markdown table of the README's Results section, cells bare."""
    text = readme.read_text(encoding="utf-8")
    start = text.find("## Results")
    assert start >= 0, f"{readme}: no '## Results' section"
    end = text.find("\n## ", start + 1)
    found, block = [], []
    for line in (text[start : end if end > 0 else None] + "\n").splitlines():
        if line.startswith("|"):
            block.append([re.sub(r"[*`]", "", cell).strip() for cell in line.strip().strip("|").split("|")])
            continue
        if len(block) > 2:
            found.append((block[0], block[2:]))
        block = []
    return found


def published(readme: Path, row: str, column: str | None) -> dict[str, float]:
    """The figures of `row` in the README's Results table: every score column, or the one
    slashed `column` cell (MAE / adaptive F / max F / S-measure)."""
    for headings, rows in tables(readme):
        for cells in rows:
            if cells[0] != row:
                continue
            if column is None:
                return {COLUMNS[h]: float(c) for h, c in zip(headings, cells) if h in COLUMNS}
            cell = cells[headings.index(column)]
            return dict(zip(SLASHED, map(float, cell.split(" / ")), strict=True))
    raise AssertionError(f"{readme}: no Results row {row!r}" + (f" with a column {column!r}" if column else ""))


@dataclass
class Case:
    """One checkpoint's pinned row: the chain that scores it and where its figures are published."""

    checkpoints: tuple[str, ...]
    plugin: str
    row: str
    steps: list[tuple[str, str, dict]]
    column: str | None = None
    prior: str | None = None
    marks: list = field(default_factory=list)

    def chain(self) -> salplug.Chain:
        return salplug.Chain([salplug.build(kind, name, **config) for kind, name, config in self.steps])


# The fastest published chain of each checkpoint (the README's commands run every one of them).
CASES = {
    "baseline": Case(("baseline-mobilenetv2.pt",), "baseline", "baseline", [("prior", "baseline", {})]),
    "baseline-fold0": Case(("baseline-fold0.pt",), "baseline", "baseline-fold0",
                           [("prior", "baseline", {"checkpoint": "fold0"})], marks=[pytest.mark.slow]),
    "baseline-fold1": Case(("baseline-fold1.pt",), "baseline", "baseline-fold1",
                           [("prior", "baseline", {"checkpoint": "fold1"})], marks=[pytest.mark.slow]),
    "a2s": Case(("a2s-efficientnet-lite0.pt",), "a2s", "a2s (stage 2)", [("prior", "a2s", {})], marks=[pytest.mark.slow]),
    "a2s-stage1": Case(("a2s-stage1-efficientnet-lite0.pt",), "a2s", "a2s-stage1, output: activation",
                       [("prior", "a2s-stage1", {"output": "activation"})], marks=[pytest.mark.slow]),
    "picanet-ldps": Case(("ldps-mobilenetv2-256.pt",), "ldps", "picanet",
                         [("prior", "center", {}), ("refiner", "ldps", {"mode": "checkpoint"})],
                         column="+ LDPS (shipped, default)", prior="picanet", marks=[pytest.mark.slow]),
    "picanet-lps": Case(("lps-mobilenetv2.pt",), "lps", "picanet",
                        [("prior", "center", {}), ("refiner", "lps", {"iterations": 1})],
                        column="+ LPS, T = 1", prior="picanet", marks=[pytest.mark.slow]),
}


def readme_of(case: Case) -> Path:
    return ROOT / "plugins" / f"salplug-{case.plugin}" / "README.md"


def test_every_shipped_checkpoint_has_pinned_figures():
    pinned = {name for case in CASES.values() for name in case.checkpoints}
    assert pinned == {p.name for p in SHIPPED}, f"shipped without pinned figures: {sorted({p.name for p in SHIPPED} - pinned)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_pinned_row_is_published_in_its_readme(name):
    case = CASES[name]
    figures = published(readme_of(case), case.row, case.column)
    assert {"mae", "adp_f", "max_f", "sm"} <= figures.keys(), f"{name}: {figures}"
    assert all(0 < value < 1 for value in figures.values()), f"{name}: {figures}"


@pytest.mark.data
@pytest.mark.parametrize("name", [pytest.param(n, marks=c.marks) for n, c in sorted(CASES.items())])
def test_shipped_checkpoint_reproduces_its_published_sod_dev_figures(name):
    case = CASES[name]
    expected = published(readme_of(case), case.row, case.column)
    dataset = SODDataset(SOD_DEV)
    priors = [case.prior] if case.prior else []
    results = score_chain(dataset, case.chain(), name, priors=priors, metrics=["mae", "fmeasure", "smeasure",
                          *(["emeasure", "wfmeasure", "overlap"] if {"adp_e", "wfm", "adp_iou"} & expected.keys() else [])])
    result = results[-1]
    assert result.count == 190 and not result.failed, f"{name}: scored {result.count} images, failed {result.failed}"
    got = {key: result.scores[key] for key in expected}
    assert got == pytest.approx(expected, abs=1e-4), f"{name}: published {expected}, scored {got}"
