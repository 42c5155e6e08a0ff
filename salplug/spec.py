"""Chain specs: the YAML/JSON form of a chain, validated by pydantic.

A spec names components by registry name, never by import path, so loading one never
imports arbitrary code. `version` lets the format change without breaking old files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ChainError

SPEC_VERSION = 1
STEP_KINDS = ("prior", "refiner", "postprocessor")


class StepSpec(BaseModel):
    """One named step: which component, of which kind, with which options."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["prior", "refiner", "postprocessor"]
    component: str
    name: str = ""
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_name(self) -> StepSpec:
        if not self.name:
            self.name = self.component
        return self


class ChainSpec(BaseModel):
    """A whole chain: one prior, then refiners, then post-processors."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = SPEC_VERSION
    micro_batch: int | None = Field(default=None, ge=1)
    steps: list[StepSpec] = Field(min_length=1)


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
    except ValidationError as err:
        problems = "; ".join(f"{_where(e['loc'], data)}: {e['msg']}" for e in err.errors())
        raise ChainError(f"invalid {source}: {problems}") from None


def load_spec(path: str | Path) -> ChainSpec:
    """Read a chain spec from a ``.yaml``/``.yml`` or ``.json`` file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ChainError(f"cannot read chain spec {path}: {err.strerror or err}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ChainError(f"chain spec {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}") from None
    return parse_spec(data, source=f"chain spec {path}")


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
    steps = {step.name: step.model_copy(deep=True) for step in spec.steps}
    for key, value in settings.items():
        name, sep, field = key.partition(".")
        if not sep or not field or name not in steps:
            raise ChainError(f"setting {key!r}: expected STEP.FIELD with STEP one of {', '.join(steps)}")
        steps[name].config[field] = value
    return spec.model_copy(update={"steps": list(steps.values())})
