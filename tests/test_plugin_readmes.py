"""Plugin READMEs follow one template, and the defaults their option tables show are the code's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic_core import PydanticUndefined

from salplug.testing import plugin_components

ROOT = Path(__file__).resolve().parents[1]
READMES = sorted(ROOT.glob("plugins/*/README.md"))
SECTIONS = ["What it does", "Use", "Components and options", "Shipped weights", "Results", "Known limits",
            "Speed", "Citation"]
ROW = re.compile(r"^\|\s*`(?P<field>\w+)`(?:\s*\([^|]*\))?\s*\|[^|]*\|\s*`(?P<default>[^`]*)`\s*\|", re.M)


def option_rows(text: str) -> list[tuple[str, str]]:
    """(field, default) of every option-table row whose default cell is one code literal."""
    return [(m["field"], m["default"]) for m in ROW.finditer(text)]


def shown(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.parent.name)
def test_each_plugin_readme_has_the_template_sections_in_order(readme):
    assert [line[3:].strip() for line in readme.read_text().splitlines() if line.startswith("## ")] == SECTIONS


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.parent.name)
def test_path_defaults_in_option_tables_are_the_code_defaults(readme):
    """A default that names a path (the kind that drifts when data moves) must be one of the plugin's own."""
    defaults: dict[str, set[str]] = {}
    for cls in plugin_components(readme.parent.name):
        for name, info in cls.Config.model_fields.items():
            value = info.default_factory() if info.default_factory else info.default
            if value is not PydanticUndefined:
                defaults.setdefault(name, set()).add(shown(value))
    rows = [(field, default) for field, default in option_rows(readme.read_text()) if "/" in default]
    for field, default in rows:
        assert default in defaults.get(field, set()), (
            f"{readme.parent.name} README: option {field!r} shows default {default}, "
            f"expected one of the code's: {sorted(defaults.get(field, set())) or 'no such field'}")


def test_the_row_reader_finds_a_path_default():
    """The table reader sees the rows the check above compares (so the check cannot pass vacuously)."""
    text = "| option | type | default | meaning |\n|---|---|---|---|\n| `data` | folder | `../x/duts-tr` | photos |\n"
    assert option_rows(text) == [("data", "../x/duts-tr")]
    assert any("/" in default for readme in READMES for _, default in option_rows(readme.read_text()))
