"""Checkpoint files of trainable components: state, config and model card together.

A checkpoint names the kind and component it belongs to, so loading LPS weights into
LDPS fails with a clear message instead of a wall of missing keys.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .errors import CheckpointError

if TYPE_CHECKING:
    from .components import Component

FORMAT = "salplug-checkpoint/1"


def save_component(component: Component, path: str | Path, card: Mapping[str, Any] | None = None) -> Path:
    """Atomically write the component's `state_dict`, config and card to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "kind": component.kind,
        "name": component.name,
        "config": component.config.model_dump(mode="json"),
        "card": dict(card or {}),
        "state_dict": {k: v.detach().cpu() for k, v in component.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint's payload (on CPU) after checking its format."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} is not a readable torch file: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: expected a {FORMAT} file written by save_weights")
    return payload


def load_component(component: Component, path: str | Path, *, strict: bool = True) -> dict[str, Any]:
    """Load a checkpoint into `component`; returns the model card."""
    payload = read_checkpoint(path)
    got = (payload["kind"], payload["name"])
    if got != (component.kind, component.name):
        raise CheckpointError(
            f"checkpoint {path}: expected weights of {component.kind} {component.name!r}, "
            f"got weights of {got[0]} {got[1]!r}"
        )
    component.load_state_dict(payload["state_dict"], strict=strict)
    return payload["card"]
