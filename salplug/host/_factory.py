"""Finding components by name and building them from options: the calls users remember."""

from __future__ import annotations

from typing import Any

from salplug.components._base import KINDS, ComponentConfig, Configurable
from salplug.errors import SalplugError, UnknownComponentError, did_you_mean
from salplug.host._manager import get_host
from salplug.host._registry import Entry


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        hint = did_you_mean(kind.rstrip("s"), KINDS, sentence=True)
        raise SalplugError(f"unknown component kind {kind!r}.{hint} Kinds: {', '.join(KINDS)}")
    return kind


def get_entry(kind: str, name: str) -> Entry:
    """The registry entry of `name`; errors name close matches and other kinds with that name."""
    registries = get_host().registries
    try:
        return registries[_check_kind(kind)].get(name)
    except UnknownComponentError as err:
        elsewhere = [k for k in KINDS if k != kind and name in registries[k].entries]
        if elsewhere:
            note = f"{name!r} is registered as a {' and a '.join(elsewhere)}, not as a {kind}"
            raise UnknownComponentError(kind, name, err.installed, note) from None
        raise


def get_component(kind: str, name: str) -> type[Configurable]:
    """The class registered as `name` for `kind`."""
    return get_entry(kind, name).cls


def list_components(kind: str, pattern: str | None = None) -> list[str]:
    """Sorted names of one kind's components, optionally filtered by a glob such as ``"*crf*"``."""
    return get_host().registries[_check_kind(kind)].names(pattern)


def build(kind: str, name: str, config: ComponentConfig | dict[str, Any] | None = None, **options: Any) -> Configurable:
    """Build a registered component, validating its options before construction."""
    cls = get_component(kind, name)
    return cls(cls.make_config(config, **options))
