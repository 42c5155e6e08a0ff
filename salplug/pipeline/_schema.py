"""JSON Schema of chain specs with every installed component's options spelled out.

`salplug.pipeline._spec.ChainSpec` accepts any component name and any config mapping, because it
is checked again when the chain is built. Editors need more: this schema names the
installed components and the fields of each one's `Config`, so a YAML file is completed
and checked while it is typed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from salplug.host._manager import get_host
from salplug.host._registry import Entry
from salplug.pipeline._spec import STEP_KINDS, ChainSpec, StepSpec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _config_field(entry: Entry) -> tuple[Any, Any]:
    """The `config` field of one step: its Config class, with a default when it has one.

    A Config whose fields have no JSON form (arbitrary types) is shown as a plain object,
    so one plugin cannot break the schema of all the others.
    """
    config = entry.cls.Config
    title = f"{entry.cls.kind} {entry.cls.name!r} options"
    try:
        config.model_json_schema()
    except Exception:
        return dict[str, Any], Field(default_factory=dict, title=title)
    try:
        return config, Field(default=config(), title=title)
    except ValidationError:
        return config, Field(title=title)


def _step_model(entry: Entry) -> type[BaseModel]:
    kind, name = entry.cls.kind, entry.cls.name
    ident = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", f"{kind} {name} step"))
    return create_model(
        ident,
        __config__=ConfigDict(extra="forbid", title=f"{kind} {name!r}"),
        __doc__=entry.summary or None,
        kind=(Literal[kind], ...),
        component=(Literal[name], ...),
        name=(str, Field(default="", description="Step name, unique in the chain; defaults to the component.")),
        config=_config_field(entry),
    )


def _step_type() -> Any:
    """Steps discriminated on `kind`, then on `component` within each kind."""
    registries = get_host().registries
    by_kind = []
    for kind in STEP_KINDS:
        entries = registries[kind].entries
        models = [_step_model(entries[name]) for name in sorted(entries)]
        if models:
            by_kind.append(Annotated[Union[tuple(models)], Field(discriminator="component")])
    if not by_kind:
        return StepSpec
    return Annotated[Union[tuple(by_kind)], Field(discriminator="kind")]


def chain_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a chain spec for the components installed now."""
    same = {name: (field.annotation, field) for name, field in ChainSpec.model_fields.items() if name != "steps"}
    spec = create_model(
        "ChainSpec",
        __config__=ConfigDict(extra="forbid", title="salplug chain spec"),
        __doc__=ChainSpec.__doc__,
        **same,
        steps=(list[_step_type()], Field(min_length=1)),
    )
    return {"$schema": SCHEMA_DIALECT, **spec.model_json_schema()}
