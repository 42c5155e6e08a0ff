"""Checkpoint files of trainable components: state, config and model card together.

A checkpoint names the kind and component it belongs to, so loading LPS weights into
LDPS fails with a clear message instead of a wall of missing keys.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from salplug.components._weight_files import note_file
from salplug.errors import CheckpointError
from salplug.data._io import atomic_write

if TYPE_CHECKING:
    from salplug.components._base import Component

FORMAT = "salplug-checkpoint/1"


def checkpoint_state(component: Component) -> dict[str, torch.Tensor]:
    """The state a checkpoint stores: without `checkpoint_skip` prefixes, floats in `checkpoint_dtype`."""
    dtype = component.checkpoint_dtype
    return {
        k: (v.detach().cpu().to(dtype) if dtype is not None and v.is_floating_point() else v.detach().cpu())
        for k, v in component.state_dict().items()
        if not k.startswith(component.checkpoint_skip)
    }


def restore_state(component: Component, state: Mapping[str, torch.Tensor], *, strict: bool = True) -> None:
    """Load a `checkpoint_state` back: skipped parts keep their rebuilt values, dtypes follow the module."""
    own = component.state_dict()
    wanted = {k for k in own if not k.startswith(component.checkpoint_skip)}
    missing, unexpected = sorted(wanted - set(state)), sorted(set(state) - wanted)
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"{component.kind} {component.name!r}: checkpoint state does not match the module "
            f"(missing {len(missing)} keys, e.g. {missing[:3]}; unexpected {len(unexpected)}, e.g. {unexpected[:3]})"
        )
    shapes = [f"{k}: expected {tuple(own[k].shape)}, got {tuple(v.shape)}" for k, v in state.items()
              if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if shapes:
        raise CheckpointError(
            f"{component.kind} {component.name!r}: checkpoint tensors have other shapes than the module "
            f"({len(shapes)} tensors, e.g. {'; '.join(shapes[:3])}); it was trained with other architecture settings"
        )
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise CheckpointError(
            f"{component.kind} {component.name!r}: checkpoint holds non-finite weights (NaN or inf) in "
            f"{len(broken)} tensors, e.g. {broken[:3]}; a diverged training wrote it"
        )
    merged = dict(own)
    merged.update({k: v.to(own[k].dtype) for k, v in state.items() if k in own})
    component.load_state_dict(merged, strict=strict)


def save_component(component: Component, path: str | Path, card: Mapping[str, Any] | None = None) -> Path:
    """Atomically write the component's `checkpoint_state`, config and card to `path`."""
    payload = {
        "format": FORMAT,
        "kind": component.kind,
        "name": component.name,
        "config": component.config.model_dump(mode="json"),
        "card": dict(card or {}),
        "state_dict": checkpoint_state(component),
    }
    return write_payload(payload, path)


def write_payload(payload: Any, path: str | Path) -> Path:
    """torch.save to a temporary file beside `path`, then rename: a crash never leaves half a file
    (a mapping is saved as a plain dict, so the weights-only reader takes it)."""
    path = Path(path)
    with atomic_write(path) as tmp:
        torch.save(dict(payload) if isinstance(payload, Mapping) else payload, tmp)
    return path


def read_payload(path: str | Path, fmt: str, *, what: str, missing_hint: str = "", expected: str) -> dict[str, Any]:
    """Load a weights-only torch file (on CPU) whose "format" is `fmt`; errors name `what` and `path`."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} {path} does not exist{missing_hint}")
    if path.is_dir():
        raise CheckpointError(f"{what} {path} is a folder; expected a file written by torch.save")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} {path} is empty; expected a file written by torch.save "
                              "(an interrupted copy or download?)")
    try:
        path.open("rb").close()
    except OSError as err:
        raise CheckpointError(f"{what} {path} is not readable: {err.strerror or err}") from None
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{what} {path} is not a torch.save file (expected the zip archive torch.save "
                              "writes; a truncated, corrupt or unrelated file?)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{what} {path} holds Python objects beyond tensors and plain data, which salplug "
                              f"never unpickles ({first})") from None
    except Exception as err:
        raise CheckpointError(f"{what} {path} is not a readable torch file: {type(err).__name__}: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise CheckpointError(expected)
    return payload


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint's payload (on CPU) after checking its format."""
    return read_payload(path, FORMAT, what="checkpoint",
                        expected=f"checkpoint {path}: expected a {FORMAT} file written by save_weights")


def load_component(component: Component, path: str | Path, *, strict: bool = True) -> dict[str, Any]:
    """Load a checkpoint into `component`; returns the model card."""
    payload = read_checkpoint(path)
    note_file(path)
    got = (payload["kind"], payload["name"])
    if got != (component.kind, component.name):
        raise CheckpointError(
            f"checkpoint {path}: expected weights of {component.kind} {component.name!r}, "
            f"got weights of {got[0]} {got[1]!r}"
        )
    restore_state(component, payload["state_dict"], strict=strict)
    return payload["card"]


def checkpoint_architecture(
    config: Any, defaults: Mapping[str, Any], path: str | Path | None, *, shaped: Iterable[str] = (), owner: str = "component"
) -> dict[str, Any]:
    """Effective architecture fields: explicit config values, else the checkpoint's, else `defaults`.

    Fields left at None follow the file, so a shipped checkpoint rebuilds the network it was
    trained as without its settings being repeated. An explicit value of a `shaped` field (one
    that sets weight shapes) that contradicts the file is a `CheckpointError` naming both.
    """
    stored = {} if path is None else read_checkpoint(path).get("config", {})
    return stored_fields(
        config, defaults, stored, shaped=shaped,
        clash=lambda field, kept, given: f"{owner}: checkpoint {path} holds a network with {field}={kept!r}, "
        f"got {field}={given!r}; leave {field} unset to follow the checkpoint",
    )


def stored_fields(
    config: Any, defaults: Mapping[str, Any], stored: Mapping[str, Any], *, shaped: Iterable[str],
    clash: Callable[[str, Any, Any], str],
) -> dict[str, Any]:
    """Per field of `defaults`: the config's value, else the stored one, else the default.

    A `shaped` field given in the config that differs from the stored value is a
    `CheckpointError` with the message `clash(field, stored, given)`.
    """
    shaped = set(shaped)
    chosen = {}
    for field, default in defaults.items():
        given, kept = getattr(config, field), stored.get(field)
        if field in shaped and None not in (given, kept) and given != kept:
            raise CheckpointError(clash(field, kept, given))
        chosen[field] = next((value for value in (given, kept, default) if value is not None), None)
    return chosen
