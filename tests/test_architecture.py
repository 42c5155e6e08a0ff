"""The import graph keeps its layers: the core's subpackages point one way, plugins use the public API.

Layers, lowest first; a module may import its own layer and those below it, never above.
The CLI is the top: nothing else imports it. Plugins, examples and benchmarks import only
public modules: ``salplug`` and its subpackages, never a ``_private`` module nor the CLI.
docs/architecture.md draws the same picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = (
    ("errors",),
    ("ops",),
    ("data",),
    ("components",),
    ("host", "hookspecs"),
    ("models",),
    ("pipeline",),
    ("metrics",),
    ("train",),
    ("distributed",),
    ("testing",),
    ("builtins",),
    ("cli",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
FACADES = {"salplug.__init__", "salplug.__main__", "salplug.pytest_plugin"}
"""The package's entry points: they import from every layer by design."""


def imported(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every salplug module a parsed file imports.

    `module` is the file's dotted path, ``__init__`` included, so relative imports resolve.
    """
    package = module.split(".")
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level] + ([base] if base else []))
            if base == "salplug":
                names += [(node.lineno, f"salplug.{a.name}") for a in node.names]
            else:
                names.append((node.lineno, base))
                names += [(node.lineno, f"{base}.{a.name}") for a in node.names if a.name.startswith("_")]
    return [(line, name) for line, name in names if name == "salplug" or name.startswith("salplug.")]


def layer(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def core_violations(module: str, tree: ast.AST) -> list[str]:
    """Imports of a core module that climb a layer or reach the CLI."""
    own = layer(module)
    found = []
    for line, name in imported(tree, module):
        target = layer(name)
        if target == "cli" and own != "cli":
            found.append(f"{module}:{line} imports the CLI ({name})")
        elif own is not None and target is not None and RANK[target] > RANK[own]:
            found.append(f"{module}:{line} ({own}) imports {name} ({target}), a higher layer")
    return found


def plugin_violations(label: str, tree: ast.AST) -> list[str]:
    """Imports of a plugin, example or benchmark that reach past the public API."""
    found = []
    for line, name in imported(tree, ""):
        if any(part.startswith("_") for part in name.split(".")) or layer(name) == "cli":
            found.append(f"{label}:{line} imports {name}, which is not public API")
    return found


def core_modules() -> list[tuple[str, Path]]:
    return [(".".join(p.relative_to(ROOT).with_suffix("").parts), p)
            for p in sorted((ROOT / "salplug").rglob("*.py"))]


def outside_files() -> list[Path]:
    return sorted(p for folder in ("plugins", "examples", "benchmarks") for p in (ROOT / folder).rglob("*.py"))


def test_the_core_top_level_holds_only_entry_points():
    modules = sorted(p.name for p in (ROOT / "salplug").glob("*.py"))
    assert len(modules) <= 10, modules
    for name in modules:
        assert name.removesuffix(".py") in {"__init__", "__main__", "pytest_plugin", "hookspecs", "errors"}, name


def test_every_core_subpackage_has_a_layer():
    packages = {p.name for p in (ROOT / "salplug").iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(RANK), packages - set(RANK)


def test_core_modules_import_only_their_layer_and_below():
    found = []
    for module, path in core_modules():
        if module not in FACADES:
            found += core_violations(module, ast.parse(path.read_text(encoding="utf-8")))
    assert not found, "\n".join(found)


def test_plugins_examples_and_benchmarks_import_only_the_public_api():
    files = outside_files()
    assert len(files) > 50
    found = []
    for path in files:
        found += plugin_violations(str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8")))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source, module, expected", [
    ("from salplug.cli import main", "salplug.metrics._diagnosis", "imports the CLI"),
    ("from salplug.pipeline import Chain", "salplug.data._io", "a higher layer"),
    ("from ...pipeline._chain import Chain", "salplug.data.sub._x", "a higher layer"),
    ("from salplug import metrics", "salplug.components._base", "a higher layer"),
    ("import salplug.train._loop", "salplug.metrics._evaluation", "a higher layer"),
])
def test_the_core_check_catches_a_climbing_import(source, module, expected):
    assert any(expected in v for v in core_violations(module, ast.parse(source)))


def test_the_core_check_passes_a_downward_import():
    assert core_violations("salplug.pipeline._chain", ast.parse("from salplug.host import build\nimport torch")) == []


@pytest.mark.parametrize("source", [
    "from salplug.data._io import read_map",
    "from salplug.cli import main",
    "import salplug.cli",
    "from salplug.train import _loop",
])
def test_the_plugin_check_catches_a_private_import(source):
    assert plugin_violations("plugin.py", ast.parse(source))


def test_the_plugin_check_passes_public_imports():
    source = "import salplug\nfrom salplug.data import read_map\nfrom salplug import Chain, train"
    assert plugin_violations("plugin.py", ast.parse(source)) == []
