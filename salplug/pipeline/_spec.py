"""Chain specs: the YAML/JSON form of a chain, validated by pydantic.

A spec names components by registry name, never by import path, so loading one never
imports arbitrary code. `version` lets the format change without breaking old files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from salplug.errors import ChainError, SettingsError
from salplug.host._manager import get_host

SPEC_VERSION = 1
STEP_KINDS = ("prior", "refiner", "postprocessor")
STEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def step_name_problem(name: object) -> str | None:
    """Why `name` cannot name a step, or None: names become output folders and ``step__field`` keys."""
    if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
        return (f"step names are identifiers (letters, digits, '-' and '_', starting with a letter or digit), "
                f"got {name!r}")
    if "__" in name:
        return f"step names may not contain '__' (it separates step and field in set_params), got {name!r}"
    return None


def unique_names(given: Sequence[str | None], components: Sequence[str]) -> list[str]:
    """Step names: the given ones, and for unnamed steps the component's name, numbered from the second
    use on (``median``, ``median-2``) as scikit-learn's ``make_pipeline`` does. Given names are kept
    as they are (two equal given names are the caller's error, reported by the chain)."""
    taken = {name for name in given if name}
    names = []
    for name, component in zip(given, components):
        if not name:
            name, n = component, 1
            while name in taken:
                n += 1
                name = f"{component}-{n}"
            taken.add(name)
        names.append(name)
    return names


class StepSpec(BaseModel):
    """One named step: which component, of which kind, with which options."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["prior", "refiner", "postprocessor"]
    component: str
    name: str = ""
    """Empty: the component's name, numbered when it repeats (see `unique_names`)."""
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid_name(self) -> StepSpec:
        problem = self.name and step_name_problem(self.name)
        if problem:
            raise ValueError(problem)
        return self


class ChainSpec(BaseModel):
    """A whole chain: one prior, then refiners, then post-processors."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = SPEC_VERSION
    micro_batch: int | None = Field(default=None, ge=1)
    steps: list[StepSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _name_steps(self) -> ChainSpec:
        names = unique_names([step.name for step in self.steps], [step.component for step in self.steps])
        for step, name in zip(self.steps, names):
            problem = step_name_problem(name)
            if problem:
                raise ValueError(f"step {step.component!r}: {problem}; give it a name")
            step.name = name
        seen: set[str] = set()
        for i, step in enumerate(self.steps):
            if step.name in seen:
                raise ValueError(f"step {i}: step name {step.name!r} is used twice; give each step its own name")
            seen.add(step.name)
        return self


def _where(loc: tuple[Any, ...], data: Any) -> str:
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        step = data.get("steps", [])[loc[1]] if isinstance(data, dict) else None
        label = step.get("name") or step.get("component") if isinstance(step, dict) else None
        rest = ".".join(str(p) for p in loc[2:]) or "(step)"
        return f"step {loc[1]}{f' ({label!r})' if label else ''}, field {rest!r}"
    return f"field {'.'.join(str(p) for p in loc)!r}"


def parse_spec(data: Any, source: str = "chain spec") -> ChainSpec:
    """Validate a spec given as a mapping; errors name the source, step and field."""
    if isinstance(data, ChainSpec):
        return data
    try:
        return ChainSpec.model_validate(data)
    except RecursionError:
        raise ChainError(f"invalid {source}: expected data nested a few levels deep, got data nested deeper "
                         "than Python can follow") from None
    except ValidationError as err:
        problems = "; ".join(f"{_where(e['loc'], data)}: {e['msg']}" for e in err.errors())
        raise ChainError(f"invalid {source}: {problems}") from None


def read_document(path: str | Path, what: str, error: type[Exception] = ChainError) -> Any:
    """The data of a ``.json`` or YAML file (safe loader: never Python objects); every failure is one `error`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{what} {path} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
                    "save it as UTF-8") from None
    except OSError as err:
        raise error(f"cannot read {what} {path}: {err.strerror or err}") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())
        raise error(f"{what} {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {reason}") from None
    except RecursionError:
        raise error(f"{what} {path}: expected a document nested a few levels deep, got one nested deeper "
                    "than Python's parser can follow") from None


SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def spec_file(spec: str | Path) -> Path:
    """The file of a chain spec given as a path, or as the name a plugin registered it under.

    A string that names no existing file, has no folder part and no spec suffix is a chain
    name (``lps``, ``baseline``); anything else is a path, so a missing file still reads as one.
    """
    path = Path(spec)
    if isinstance(spec, str) and not path.exists() and path.name == spec and path.suffix not in SPEC_SUFFIXES:
        return get_host().chains.get(spec).spec
    return path


def load_spec(spec: str | Path) -> ChainSpec:
    """Read a chain spec from a ``.yaml``/``.yml`` or ``.json`` file, or by a registered chain's name."""
    return parse_spec(read_document(spec_file(spec), "chain spec"), source=f"chain spec {spec}")


def dump_spec(spec: ChainSpec, path: str | Path | None = None) -> str:
    """Serialise a spec as YAML (or JSON for a ``.json`` path); write it when a path is given."""
    data = spec.model_dump(mode="json")
    as_json = path is not None and Path(path).suffix == ".json"
    text = json.dumps(data, indent=2) + "\n" if as_json else yaml.safe_dump(data, sort_keys=False)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def with_settings(spec: ChainSpec, settings: dict[str, Any]) -> ChainSpec:
    """A copy of `spec` with ``{"step.field": value}`` written into those steps' configs.

    Lets a command line point one step at another checkpoint or option without a new
    spec file; the components validate the values when the chain is built.
    """
    steps = [step.model_copy(deep=True) for step in spec.steps]
    by_name = {step.name: step for step in steps}
    for key, value in settings.items():
        name, sep, field = key.partition(".")
        if not sep or not field or name not in by_name:
            raise ChainError(f"setting {key!r}: expected STEP.FIELD with STEP one of {', '.join(by_name)}")
        by_name[name].config[field] = value
    return spec.model_copy(update={"steps": steps})


def parse_settings(pairs: list[str], usage: str) -> dict:
    """``KEY=VALUE`` strings as a mapping, each value read as YAML (3, 0.1, [a, b], null)."""
    options: dict = {}
    for setting in pairs:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise SettingsError(f"expected --set {usage}, got {setting!r}")
        try:
            options[key] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError as err:
            reason = " ".join(str(err).split())
            raise SettingsError(f"--set {setting!r}: the value is not plain YAML data ({reason}); "
                               "quote it to pass it as a string") from None
    return options
