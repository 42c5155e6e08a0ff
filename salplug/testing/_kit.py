"""Conformance kit: the checks a plugin's own tests run on its components.

``salplug.testing.check_component(MyRefiner, config={"gamma": 3})`` validates the class
the way the plugin host will, round-trips its config the way chain specs do, then runs it
on seeded random data of an odd size on every device and checks the data contract. Any
broken rule raises `ConformanceError`, an `AssertionError`, so pytest reports it as a
failed assertion that names the component, the check, what was expected and what came.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import yaml
from torch import Tensor

from salplug.components._base import BASES, KINDS, Component, ComponentConfig, Trainer
from salplug.errors import ConfigError
from salplug.host._registry import Registrar, RegistrationError, Registry

UNKNOWN_OPTION = "salplug_conformance_unknown_option"
"""The option name fed to a `Config` to prove it rejects fields it does not declare."""

ConfigLike = ComponentConfig | Mapping[str, Any] | None


class ConformanceError(AssertionError):
    """A component broke a rule that every salplug component keeps."""

    def __init__(self, subject: str, check: str, expected: str, got: str):
        self.subject, self.check, self.expected, self.got = subject, check, expected, got
        super().__init__(f"{subject}: {check}: expected {expected}, got {got}")


def default_devices() -> list[str]:
    """The CPU, plus CUDA where this machine has it."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _subject(cls: type) -> str:
    return f"{getattr(cls, 'kind', '?') or '?'} {getattr(cls, 'name', '?')!r} ({cls.__qualname__})"


def _check_registrable(cls: type[Component], subject: str) -> None:
    kind = getattr(cls, "kind", None)
    if kind not in BASES:
        raise ConformanceError(subject, "kind", f"one of {', '.join(KINDS)}", repr(kind))
    try:
        Registrar(Registry(kind), "conformance", "conformance")(cls)
    except RegistrationError as err:
        raise ConformanceError(subject, "registration", "a class the plugin host accepts", str(err)) from None


def _check_round_trip(cls: type[Component], config: ComponentConfig, subject: str) -> None:
    data = config.model_dump(mode="json")
    try:
        copies = {
            "model_dump(mode='json')": data,
            "JSON text": json.loads(json.dumps(data)),
            "YAML text": yaml.safe_load(yaml.safe_dump(data)),
        }
    except (TypeError, ValueError, yaml.YAMLError) as err:
        raise ConformanceError(subject, "config serialisation", "JSON and YAML-safe values", str(err)) from None
    for how, payload in copies.items():
        check = f"config round trip through {how}"
        try:
            again = cls.make_config(payload)
        except ConfigError as err:
            raise ConformanceError(subject, check, f"{payload!r} to validate again", str(err)) from None
        if again != config:
            raise ConformanceError(subject, check, repr(config), repr(again))


def _check_rejects_unknown(cls: type[Component], config: ComponentConfig, subject: str) -> None:
    bad = {**config.model_dump(mode="json"), UNKNOWN_OPTION: 1}
    attempts: dict[str, Callable[[], object]] = {
        "make_config": lambda: cls.make_config(bad),
        "the constructor": lambda: cls(**bad),
    }
    for how, attempt in attempts.items():
        check = f"unknown option through {how}"
        expected = f"salplug.ConfigError naming {UNKNOWN_OPTION!r}"
        try:
            attempt()
        except ConfigError as err:
            if not any(UNKNOWN_OPTION in field for field, _ in err.problems):
                raise ConformanceError(subject, check, expected, str(err)) from None
            continue
        except Exception as err:
            raise ConformanceError(subject, check, expected, f"{type(err).__name__}: {err}") from None
        raise ConformanceError(subject, check, expected, "the option accepted (does Config keep extra='forbid'?)")


def check_config(cls: type[Component], config: ConfigLike = None) -> ComponentConfig:
    """Check registration rules, unknown-option rejection and config round trips; return the config."""
    subject = _subject(cls)
    _check_registrable(cls, subject)
    built = cls.make_config(config)
    _check_round_trip(cls, built, subject)
    _check_rejects_unknown(cls, built, subject)
    return built


def _snapshot(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, Tensor) else copy.deepcopy(value)


def _check_untouched(inputs: dict[str, Any], before: dict[str, Any], subject: str) -> None:
    for what, value in inputs.items():
        old = before[what]
        if isinstance(value, Tensor):
            if not torch.equal(value, old):
                change = float((value.detach().double() - old.double()).abs().nan_to_num(math.inf).max())
                got = f"it modified in place (max change {change:.3g})"
                raise ConformanceError(subject, f"input {what!r}", "inputs left untouched", got)
        elif value != old:
            raise ConformanceError(subject, f"input {what!r}", f"{old!r} left untouched", repr(value))


def _call(fn: Callable[..., Any], inputs: dict[str, Any], subject: str) -> Any:
    before = {what: _snapshot(value) for what, value in inputs.items()}
    out = fn(*inputs.values())
    _check_untouched(inputs, before, subject)
    return out


def _check_tensor(
    out: Any, expected_shape: tuple[int, ...], device: torch.device | None, what: str, subject: str
) -> Tensor:
    """Type, shape, dtype, device (unless None) and finiteness, in that order."""
    description = f"a float tensor of shape {expected_shape}" + (f" on {device}" if device is not None else "")
    if not isinstance(out, Tensor):
        raise ConformanceError(subject, what, description, type(out).__name__)
    if tuple(out.shape) != expected_shape:
        raise ConformanceError(subject, f"{what} shape", str(expected_shape), str(tuple(out.shape)))
    if not out.is_floating_point():
        raise ConformanceError(subject, f"{what} dtype", "a floating-point dtype", str(out.dtype))
    if device is not None and out.device != device:
        raise ConformanceError(subject, f"{what} device", str(device), str(out.device))
    bad = int((~torch.isfinite(out.detach())).sum())
    if bad:
        raise ConformanceError(subject, f"{what} values", "finite values", f"{bad} NaN or infinite of {out.numel()}")
    return out.detach()


def _check_map(out: Any, image: Tensor, subject: str) -> Tensor:
    b, _, h, w = image.shape
    out = _check_tensor(out, (b, 1, h, w), image.device, "output", subject)
    lo, hi = float(out.min()), float(out.max())
    if lo < 0.0 or hi > 1.0:
        raise ConformanceError(subject, "output range", "values in [0, 1]", f"min {lo:.4g} and max {hi:.4g}")
    return out


def _map_inputs(kind: str, image: Tensor, second: Any, rows: slice) -> dict[str, Any]:
    image = image[rows]
    if kind == "prior":
        return {"image": image, "keys": list(second[rows])}
    return {"image": image, "saliency": second[rows]}


def _check_map_component(
    make: Callable[[], Component], cls: type[Component], devices: list[str], atol: float, data: dict[str, Any]
) -> None:
    image = data["images"]
    second = data["keys"] if cls.kind == "prior" else data["maps"]
    batch = image.shape[0]
    for device in devices:
        subject = f"{_subject(cls)} on {device}"
        component = make().to(device).eval()
        on_device = second.to(device) if isinstance(second, Tensor) else second
        every = _map_inputs(cls.kind, image.to(device), on_device, slice(None))
        out = _check_map(_call(component, every, subject), every["image"], subject)
        if getattr(cls, "stateful", False):
            continue
        for i in range(batch):
            alone = _map_inputs(cls.kind, every["image"], on_device, slice(i, i + 1))
            single = _check_map(_call(component, alone, subject), alone["image"], subject)
            diff = float((single.double() - out[i : i + 1].double()).abs().max())
            if not diff <= atol:
                raise ConformanceError(
                    subject,
                    "batch agreement",
                    f"image {i} run alone to match its row of the batch output within atol={atol:g} "
                    f"(set stateful = True if outputs depend on other images)",
                    f"a max abs difference of {diff:.3g}",
                )


def _check_scores(scores: Any, batch: int, subject: str) -> dict[str, Tensor]:
    if not isinstance(scores, Mapping) or not scores:
        raise ConformanceError(subject, "update() result", "a non-empty dict of per-image score tensors", repr(scores))
    for key, value in scores.items():
        _check_tensor(value, (batch,), None, f"update() score {key!r}", subject)
    return dict(scores)


def _check_totals(totals: Any, subject: str) -> dict[str, float]:
    if not isinstance(totals, Mapping) or not totals:
        raise ConformanceError(subject, "compute() result", "a non-empty dict of floats", repr(totals))
    for key, value in totals.items():
        if not isinstance(value, float) or not math.isfinite(value):
            raise ConformanceError(subject, f"compute() score {key!r}", "a finite Python float", repr(value))
    return dict(totals)


def _check_metric(
    make: Callable[[], Component], cls: type[Component], devices: list[str], atol: float, data: dict[str, Any]
) -> None:
    first, other = data["metric_batches"]
    batch = first[0].shape[0]
    for device in devices:
        subject = f"{_subject(cls)} on {device}"
        metric = make().to(device).eval()
        metric.reset()
        a = {"saliency": first[0].to(device), "mask": first[1].to(device)}
        b = {"saliency": other[0].to(device), "mask": other[1].to(device)}
        _check_scores(_call(metric.update, a, subject), batch, subject)
        expected = _check_totals(metric.compute(), subject)
        _check_scores(_call(metric.update, b, subject), other[0].shape[0], subject)
        metric.reset()
        _check_scores(_call(metric.update, a, subject), batch, subject)
        got = _check_totals(metric.compute(), subject)
        same = got.keys() == expected.keys() and all(
            math.isclose(got[k], expected[k], rel_tol=1e-6, abs_tol=atol) for k in expected
        )
        if not same:
            raise ConformanceError(
                subject, "reset()", f"compute() after reset and the same update to give {expected}", str(got)
            )


def _check_backbone(
    make: Callable[[], Component], cls: type[Component], devices: list[str], data: dict[str, Any]
) -> None:
    image = data["images"]
    b, _, h, w = image.shape
    for device in devices:
        subject = f"{_subject(cls)} on {device}"
        backbone = make().to(device).eval()
        channels, strides = list(backbone.channels), list(backbone.strides)
        if len(channels) != len(strides):
            expected = f"{len(channels)} strides, one per channel count"
            raise ConformanceError(subject, "declared levels", expected, str(strides))
        moved = image.to(device)
        features = _call(backbone, {"image": moved}, subject)
        if not isinstance(features, list):
            expected = f"a list of {len(channels)} feature maps"
            raise ConformanceError(subject, "forward() result", expected, type(features).__name__)
        if len(features) != len(channels):
            raise ConformanceError(subject, "feature levels", f"{len(channels)} (len(channels))", str(len(features)))
        for level, (feature, c, s) in enumerate(zip(features, channels, strides)):
            what = f"feature level {level}"
            if not isinstance(feature, Tensor) or feature.ndim != 4:
                got = repr(getattr(feature, "shape", feature))
                raise ConformanceError(subject, what, f"a B×{c}×H×W tensor", got)
            fh, fw = feature.shape[-2:]
            if abs(fh - h / s) >= 1 or abs(fw - w / s) >= 1:
                raise ConformanceError(
                    subject, f"{what} size", f"about {h / s:.1f}×{w / s:.1f} for stride {s} on {h}×{w}", f"{fh}×{fw}"
                )
            _check_tensor(feature, (b, c, fh, fw), moved.device, what, subject)


def _data(
    seed: int,
    shape: tuple[int, int, int],
    images: Tensor | None,
    maps: Tensor | None,
    keys: Sequence[str] | None,
    masks: Tensor | None,
) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(seed)
    batch, height, width = shape
    if images is not None:
        batch, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    elif maps is not None:
        batch, height, width = maps.shape[0], maps.shape[-2], maps.shape[-1]
    if images is None:
        images = torch.rand((batch, 3, height, width), generator=generator)
    if maps is None:
        maps = torch.rand((batch, 1, height, width), generator=generator)
    if masks is None:
        masks = torch.rand((batch, 1, height, width), generator=generator) > 0.5
    keys = list(keys) if keys is not None else [f"image{i}" for i in range(batch)]
    if len(keys) != batch:
        raise ValueError(f"keys: expected {batch} names, one per image, got {len(keys)}")
    other = (torch.rand(maps.shape, generator=generator), torch.rand(masks.shape, generator=generator) > 0.5)
    return {"images": images, "maps": maps, "keys": keys, "metric_batches": ((maps, masks), other)}


def check_component(
    component: type[Component] | Component,
    config: ConfigLike = None,
    *,
    devices: Sequence[str | torch.device] | None = None,
    atol: float = 1e-5,
    seed: int = 0,
    shape: tuple[int, int, int] = (3, 37, 53),
    images: Tensor | None = None,
    maps: Tensor | None = None,
    keys: Sequence[str] | None = None,
    masks: Tensor | None = None,
) -> None:
    """Run every check for the component's kind; raise `ConformanceError` on the first broken rule.

    `component` is a class (built from `config`) or an instance (copied per device, so the
    caller's object is never moved). Random inputs are ``B×3×H×W`` images and ``B×1×H×W``
    maps from `shape` = (B, H, W) and `seed`; pass `images`, `maps`, `keys` or `masks` for
    components that need real data (the ``given`` prior needs keys of files on disk).
    Components run in eval mode; one with ``device_bound`` runs on that device only.
    A `Trainer` class gets the registration and config checks (running it is training).
    """
    if isinstance(component, type) and issubclass(component, Trainer):
        check_config(component, config)
        return
    if isinstance(component, Component):
        if config is not None:
            raise TypeError("check_component: pass a config with a class, not with an instance (it has one)")
        cls = type(component)
        check_config(cls, component.config)
        make: Callable[[], Component] = functools.partial(copy.deepcopy, component)
    elif isinstance(component, type) and issubclass(component, Component):
        cls = component
        make = functools.partial(cls, check_config(cls, config))
    else:
        raise TypeError(f"check_component: expected a salplug component class or instance, got {component!r}")
    bound = cls.device_bound
    wanted = [str(d) for d in (devices if devices is not None else default_devices())]
    chosen = [bound] if bound is not None else list(dict.fromkeys(wanted))
    data = _data(seed, shape, images, maps, keys, masks)
    if cls.kind in ("prior", "refiner", "postprocessor"):
        _check_map_component(make, cls, chosen, atol, data)
    elif cls.kind == "metric":
        _check_metric(make, cls, chosen, atol, data)
    else:
        _check_backbone(make, cls, chosen, data)


def plugin_components(name: str) -> list[type[Component] | type[Trainer]]:
    """Every class the installed plugin or distribution `name` registered, of every kind."""
    from salplug.host._manager import get_host

    host = get_host()
    infos = [info for info in host.plugins.values() if name in (info.name, info.distribution)]
    if not infos:
        known = ", ".join(sorted({i.name for i in host.plugins.values()} | {i.distribution for i in host.plugins.values()}))
        raise LookupError(f"conformance: no installed plugin or distribution named {name!r} (installed: {known})")
    return [host.registries[kind].entries[n].cls for info in infos for kind, names in info.components.items() for n in names]


def conformance_tests(*names: str) -> Callable[..., None]:
    """A pytest test, parametrized over every component of the named plugins or distributions.

    In a plugin's test suite: ``test_conformance = salplug.testing.conformance_tests("salplug-sharpen")``.
    Each class is checked with its `example_config`.
    """
    import pytest

    classes = [cls for name in names for cls in plugin_components(name)]

    @pytest.mark.parametrize("component", classes, ids=[f"{c.kind}:{c.name}" for c in classes])
    def test_conformance(component) -> None:
        check_example(component)

    return test_conformance


def check_example(cls: type[Component] | type[Trainer]) -> None:
    """`check_component` with the class's `example_config`; a pytest skip when it needs one and has none."""
    required = [f for f, info in cls.Config.model_fields.items() if info.is_required()]
    if cls.example_config is None and required:
        import pytest

        pytest.skip(f"{cls.kind} {cls.name!r} needs options ({', '.join(required)}): give it an example_config")
    check_component(cls, cls.example_config)
