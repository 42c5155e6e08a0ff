"""Checkpoints shipped inside a plugin's package, and the ``checkpoint`` field that names them.

A learned component's ``checkpoint`` field takes a tag of a file installed with its plugin
(``"shipped"``, or tags such as ``"fold0"``), a path, or None for an untrained network.
Resolving the tag in one place gives every plugin the same lookup and the same error.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from salplug.errors import CheckpointError

SHIPPED = "shipped"
"""The tag of a component's default checkpoint, installed with its plugin."""


def shipped_checkpoint(package: str, filename: str, *, owner: str = "component", hint: str = "") -> Path:
    """The file ``<package>/checkpoints/<filename>`` installed with a plugin.

    A missing file is a `CheckpointError` naming the path; `hint` says what to do instead
    (train one, pass another path).
    """
    path = Path(str(resources.files(package) / "checkpoints" / filename))
    if not path.is_file():
        raise CheckpointError(f"{owner}: expected a shipped checkpoint at {path}, got none installed"
                              f"{'; ' + hint if hint else ''}")
    return path


def checkpoint_file(
    value: str | None, package: str, shipped: str | Mapping[str, str], *, owner: str = "component", hint: str = ""
) -> Path | None:
    """The file a ``checkpoint`` field names: a shipped tag's installed file, else the value as a path.

    `shipped` is the file of the ``"shipped"`` tag, or a mapping of tags to files; None stays
    None (an untrained network).
    """
    if value is None:
        return None
    files = {SHIPPED: shipped} if isinstance(shipped, str) else shipped
    if value in files:
        return shipped_checkpoint(package, files[value], owner=owner, hint=hint)
    return Path(value)
