"""Named chains: the chain specs plugins ship, found by name (``salplug run --chain lps``).

A plugin registers each spec file it ships with a name and a one-line summary, so a user
types a name instead of a path into the installed package. At most one chain is the default,
the one ``salplug run`` uses when no ``--chain`` is given.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from salplug.errors import SalplugError, did_you_mean
from salplug.host._registry import NAME_PATTERN, RegistrationError


class UnknownChainError(SalplugError, KeyError):
    """A chain name that no installed plugin registered."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ChainEntry:
    """A registered chain: its spec file, what it does, how it scores, who ships it."""

    name: str
    spec: Path
    summary: str
    plugin: str
    distribution: str
    scores: str = ""
    """Its figures on a named report set, as one line (e.g. ``sod-dev: MAE 0.097, S 0.795``)."""
    default: bool = False


@dataclass
class ChainRegistry:
    """Chain names mapped to their entries, plus the default chain if one plugin declared it."""

    entries: dict[str, ChainEntry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, entry: ChainEntry) -> str | None:
        """Add `entry`; a problem (a name or a default taken by another plugin) comes back as text."""
        taken = self.entries.get(entry.name)
        if taken is not None and taken.spec != entry.spec:
            return f"chain {entry.name!r} is registered by both {taken.distribution!r} and {entry.distribution!r}"
        if entry.default and self.default is not None and self.default.name != entry.name:
            return (f"chain {entry.name!r} and chain {self.default.name!r} ({self.default.distribution}) "
                    "are both declared the default")
        self.entries[entry.name] = entry
        return None

    @property
    def default(self) -> ChainEntry | None:
        return next((e for e in self.entries.values() if e.default), None)

    def names(self, pattern: str | None = None) -> list[str]:
        names = sorted(self.entries)
        return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names

    def get(self, name: str) -> ChainEntry:
        try:
            return self.entries[name]
        except KeyError:
            hint = did_you_mean(name, self.entries, n=3, sentence=True)
            raise UnknownChainError(f"unknown chain {name!r}.{hint} Installed chains: "
                                    f"{', '.join(sorted(self.entries)) or 'none'} (salplug list chain).") from None


class ChainRegistrar:
    """The `register` callable of ``salplug_register_chains``, bound to one plugin."""

    def __init__(self, registry: ChainRegistry, plugin: str, distribution: str):
        self.registry, self.plugin, self.distribution = registry, plugin, distribution
        self.registered: list[str] = []
        self.problems: list[str] = []

    def __call__(self, name: str, spec: str | Path, summary: str, *, scores: str = "", default: bool = False) -> None:
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise RegistrationError("register: a chain name must be lower-case letters, digits, '.', '_' or '-', "
                                    f"starting with a letter or digit; got {name!r}")
        path = Path(spec)
        if not path.is_file():
            raise RegistrationError(f"register: chain {name!r}: expected a spec file, got {str(path)!r} (no such file)")
        problem = self.registry.add(ChainEntry(name, path, summary, self.plugin, self.distribution, scores, default))
        if problem:
            self.problems.append(problem)
        else:
            self.registered.append(name)
