"""Per-kind registries of component classes, and the registrar plugins call."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from salplug.components._base import BASES, ComponentConfig, Configurable
from salplug.errors import DuplicateComponentError, SalplugError, UnknownComponentError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class RegistrationError(SalplugError, TypeError):
    """A plugin tried to register something that is not a valid component class."""


@dataclass(frozen=True)
class Entry:
    """A registered component class and who registered it."""

    cls: type[Configurable]
    plugin: str
    distribution: str

    @property
    def summary(self) -> str:
        """The docstring's first line as plain text (reST ``literals`` and `references` unquoted)."""
        doc = (self.cls.__doc__ or "").strip()
        return re.sub(r"``(.+?)``|`(.+?)`", lambda m: m.group(1) or m.group(2), doc.splitlines()[0]) if doc else ""


@dataclass
class Registry:
    """Names of one component kind mapped to their classes."""

    kind: str
    entries: dict[str, Entry] = field(default_factory=dict)
    conflicts: dict[str, DuplicateComponentError] = field(default_factory=dict)

    def add(self, entry: Entry) -> Entry | None:
        """Add `entry`; returns the entry it clashes with (another class under the name), else None.

        A clash is recorded, not raised: the name then fails to build, naming both
        distributions, while both plugins' other components stay usable whatever their
        load order.
        """
        name = entry.cls.name
        taken = self.entries.get(name)
        if taken is None:
            self.entries[name] = entry
            return None
        if taken.cls is entry.cls:
            return None
        self.conflicts[name] = DuplicateComponentError(self.kind, name, taken.distribution, entry.distribution)
        return taken

    def get(self, name: str) -> Entry:
        if name in self.conflicts:
            raise self.conflicts[name]
        try:
            return self.entries[name]
        except KeyError:
            raise UnknownComponentError(self.kind, name, self.entries) from None

    def names(self, pattern: str | None = None) -> list[str]:
        names = sorted(self.entries)
        return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


class Registrar:
    """The `register` callable a registration hook receives, bound to one kind and plugin."""

    def __init__(self, registry: Registry, plugin: str, distribution: str):
        self.kind = registry.kind
        self._registry, self._plugin, self._distribution = registry, plugin, distribution
        self.registered: list[str] = []
        self.clashes: list[tuple[str, Entry]] = []
        """(name, the entry already holding it) for each registration that clashed."""

    def __call__(self, cls: type[Configurable]) -> type[Configurable]:
        base = BASES[self.kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise RegistrationError(f"register: expected a subclass of salplug.{base.__name__}, got {cls!r}")
        if not isinstance(cls.name, str) or not NAME_PATTERN.match(cls.name):
            raise RegistrationError(
                f"register: {cls.__qualname__}.name must be lower-case letters, digits, '.', '_' "
                f"or '-', starting with a letter or digit; got {cls.name!r}"
            )
        config = cls.Config
        if not (isinstance(config, type) and issubclass(config, ComponentConfig)):
            raise RegistrationError(f"register: {cls.__qualname__}.Config must subclass salplug.ComponentConfig")
        if config.model_config.get("extra") != "forbid":
            raise RegistrationError(f"register: {cls.__qualname__}.Config must keep extra='forbid'")
        taken = self._registry.add(Entry(cls, self._plugin, self._distribution))
        if taken is None:
            self.registered.append(cls.name)
        else:
            self.clashes.append((cls.name, taken))
        return cls
