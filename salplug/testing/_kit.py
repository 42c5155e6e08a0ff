"""Conformance kit: the checks a plugin's own tests run on its components, one pytest test each.

``@salplug.testing.parametrize_with_checks([MyRefiner])`` yields a (component, check) pair
per named check that applies to each class (config rules, output shape and range, kept
size, batch independence, device moves, determinism, weights round trip, trainer rules),
each built from the class's `example_config`. `check_component` runs every check at once
and reports every broken one. A broken rule raises `ConformanceError`, an
`AssertionError` naming the component, the rule, what was expected and what came.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import skimage
import torch
from torch import Tensor

from salplug.components._base import Component, ComponentConfig, Configurable, Trainer
from salplug.testing.checks import Case, ConformanceError, Inputs, checks_for, describe, random_inputs

EXAMPLE_MAPS = Path(skimage.data_dir)
"""A folder every install has (scikit-image's data) holding grayscale pictures named after
`EXAMPLE_KEYS`: the ``root`` of an `example_config` for a prior that reads maps by key."""

EXAMPLE_KEYS = ("camera", "coins", "moon", "page")
"""The keys the kit passes with its images (``image<i>`` past these four)."""

SHAPE = (2, 32, 32)
"""Batch, height and width of the kit's random inputs."""

ODD_SIZE = (29, 43)
"""A second, odd and non-square, height and width for the size checks."""

ConfigLike = ComponentConfig | Mapping[str, Any] | None
Subject = type[Configurable] | Component | Trainer


def default_devices() -> list[str]:
    """The CPU, plus CUDA where this machine has it."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _class_of(component: Subject) -> type[Configurable]:
    if isinstance(component, (Component, Trainer)):
        return type(component)
    if isinstance(component, type) and issubclass(component, (Component, Trainer)):
        return component
    raise TypeError(f"conformance: expected a salplug component or trainer class or instance, got {component!r}")


def _needs_options(cls: type[Configurable]) -> list[str]:
    """Required `Config` fields of a class without an `example_config`."""
    if cls.example_config is not None:
        return []
    return [f for f, info in cls.Config.model_fields.items() if info.is_required()]


_SHARED: dict[Any, dict[Any, Any]] = {}
"""What the checks of the last component share, as checks run component by component: one build of a
class with its config (checks run on copies of it) and, per inputs, each device's first `Run`."""


def _shared(key: Any) -> dict[Any, Any]:
    """The store of the component `key` names; the previous component's store goes."""
    if key not in _SHARED:
        _SHARED.clear()
        _SHARED[key] = {}
    return _SHARED[key]


def _prototype(cls: type[Configurable], config: ComponentConfig) -> Any:
    store = _shared((cls, repr(config)))
    if "built" not in store:
        store["built"] = cls(config)
    return store["built"]


def _fresh(cls: type[Configurable], config: ComponentConfig) -> Any:
    return copy.deepcopy(_prototype(cls, config))


def _inputs(
    seed: int, shape: tuple[int, int, int], images: Tensor | None, maps: Tensor | None,
    keys: Sequence[str] | None, masks: Tensor | None,
) -> tuple[Inputs, Inputs, tuple[Inputs, ...]]:
    """The main batch, a second one for metrics, and the batches of the size checks."""
    given = next((t for t in (images, maps, masks) if t is not None), None)
    batch, height, width = shape if given is None else (given.shape[0], given.shape[-2], given.shape[-1])
    names = list(keys) if keys is not None else [
        EXAMPLE_KEYS[i] if i < len(EXAMPLE_KEYS) else f"image{i}" for i in range(batch)
    ]
    if len(names) != batch:
        raise ValueError(f"keys: expected {batch} names, one per image, got {len(names)}")
    main, other = random_inputs(seed, (batch, height, width), names)
    main = Inputs(
        images if images is not None else main.images,
        maps if maps is not None else main.maps,
        masks if masks is not None else main.masks,
        main.keys,
    )
    if given is not None:
        return main, other, (main,)
    odd, _ = random_inputs(seed + 1, (batch, *ODD_SIZE), names)
    return main, other, (main, odd)


class Check:
    """One named check with the kit's options bound: ``check(component)`` runs it on a class
    (built from the bound config, else its `example_config`) or on copies of an instance."""

    def __init__(
        self, function: Callable[[Case], None], *, config: ConfigLike = None,
        devices: Sequence[str | torch.device] | None = None, atol: float = 1e-5, seed: int = 0,
        shape: tuple[int, int, int] = SHAPE, images: Tensor | None = None, maps: Tensor | None = None,
        keys: Sequence[str] | None = None, masks: Tensor | None = None,
    ):
        self.function, self.name = function, function.__name__
        self.__doc__ = function.__doc__
        self.config, self.devices, self.atol = config, devices, atol
        self.data = (seed, shape, images, maps, keys, masks)

    def __repr__(self) -> str:
        return self.name

    def case(self, component: Subject) -> Case:
        """The `Case` this check runs on: config, copies of the component, devices and inputs."""
        cls = _class_of(component)
        if isinstance(component, type):
            if self.config is None and _needs_options(cls):
                import pytest

                pytest.skip(f"{describe(cls)} needs options ({', '.join(_needs_options(cls))}): give it an example_config")
            config = cls.make_config(self.config if self.config is not None else cls.example_config)
            make = functools.partial(_fresh, cls, config)
            store = _shared((cls, repr(config)))
        else:
            if self.config is not None:
                raise TypeError("conformance: pass a config with a class, not with an instance (it has one)")
            config, make = component.config, functools.partial(copy.deepcopy, component)
            store = _shared(("instance", id(component)))
            store["instance"] = component
        bound = getattr(cls, "device_bound", None)
        wanted = [str(d) for d in (self.devices if self.devices is not None else default_devices())]
        devices = (bound,) if bound is not None else tuple(dict.fromkeys(wanted))
        main, other, sizes = _inputs(*self.data)
        seed, shape, *given = self.data
        key = ("runs", seed, shape, *(id(value) for value in given), devices)
        _, runs = store.setdefault(key, (self.data, {}))
        return Case(cls, config, make, devices, self.atol, main, other, sizes, runs)

    def __call__(self, component: Subject) -> None:
        self.function(self.case(component))


def all_checks(component: Subject, **options: Any) -> list[Check]:
    """Every check that applies to `component`, with `options` (those of `check_component`) bound."""
    return [Check(function, **options) for function in checks_for(_class_of(component))]


def _run(component: Subject, checks: list[Check]) -> None:
    """Run every check, from a fresh build; one `ConformanceError` listing each broken one (``failures`` maps
    check names to errors)."""
    _SHARED.clear()
    failures = {}
    for check in checks:
        try:
            check(component)
        except ConformanceError as err:
            failures[check.name] = err
    if failures:
        lines = "".join(f"\n  {name}: {e.check}: expected {e.expected}, got {e.got}" for name, e in failures.items())
        error = ConformanceError(
            describe(_class_of(component)), "conformance", f"all {len(checks)} checks to pass",
            f"{len(failures)} failed:{lines}",
        )
        error.failures = failures
        raise error


def check_component(
    component: Subject,
    config: ConfigLike = None,
    *,
    devices: Sequence[str | torch.device] | None = None,
    atol: float = 1e-5,
    seed: int = 0,
    shape: tuple[int, int, int] = SHAPE,
    images: Tensor | None = None,
    maps: Tensor | None = None,
    keys: Sequence[str] | None = None,
    masks: Tensor | None = None,
) -> None:
    """Run every check for the component's kind; raise one `ConformanceError` naming each broken rule.

    `component` is a class (built from `config`, else its `example_config`, else defaults) or
    an instance (copied per check, so the caller's object is never moved). Random inputs are
    ``B×3×H×W`` images and ``B×1×H×W`` maps from `shape` = (B, H, W) and `seed`, plus an odd
    H×W for the size checks; pass `images`, `maps`, `keys` or `masks` for components that
    need real data. Components run in eval mode on every device (CUDA where present), one
    with ``device_bound`` on that device only.
    """
    cls = _class_of(component)
    if isinstance(component, type):
        config = cls.make_config(config if config is not None else cls.example_config)
    elif config is not None:
        raise TypeError("check_component: pass a config with a class, not with an instance (it has one)")
    options = dict(devices=devices, atol=atol, seed=seed, shape=shape, images=images, maps=maps, keys=keys, masks=masks)
    _run(component, all_checks(component, config=config, **options))


def check_config(cls: type[Configurable], config: ConfigLike = None) -> ComponentConfig:
    """Run the config checks (registration, round trips, unknown options, descriptions); return the config."""
    built = cls.make_config(config if config is not None else cls.example_config)
    checks = [c for c in all_checks(cls, config=built) if c.name.startswith(("check_registration", "check_config"))]
    _run(cls, checks)
    return built


def check_example(cls: type[Configurable]) -> None:
    """`check_component` with the class's `example_config`; a pytest skip when it needs one and has none."""
    if _needs_options(cls):
        import pytest

        pytest.skip(f"{describe(cls)} needs options ({', '.join(_needs_options(cls))}): give it an example_config")
    check_component(cls)


def _test_id(component: Subject, check: Check) -> str:
    """``kind:name-check``; an instance adds its options that differ from the defaults, as ``name(a=1,b=2)``."""
    cls = _class_of(component)
    options = ""
    if not isinstance(component, type):
        changed = component.config.model_dump(mode="json", exclude_defaults=True)
        options = f"({','.join(f'{k}={v}' for k, v in changed.items())})"
    return f"{cls.kind}:{cls.name}{options}-{check.name}"


def check_params(
    components: Iterable[Subject],
    expected_failed_checks: Mapping[str, str] | Callable[[Subject], Mapping[str, str]] | None = None,
    **options: Any,
) -> list[Any]:
    """The ``pytest.param(component, check)`` list `parametrize_with_checks` parametrizes over."""
    import pytest

    params, named = [], set()
    for component in components:
        checks = all_checks(component, **options)
        expected = dict(expected_failed_checks(component) if callable(expected_failed_checks) else expected_failed_checks or {})
        names = {check.name for check in checks}
        named |= names
        if callable(expected_failed_checks) and not set(expected) <= names:
            unknown = ", ".join(sorted(set(expected) - names))
            raise ValueError(f"expected_failed_checks for {describe(_class_of(component))}: no check {unknown} runs on it "
                             f"(its checks: {', '.join(sorted(names))})")
        for check in checks:
            marks = [pytest.mark.xfail(reason=expected[check.name], strict=True)] if check.name in expected else []
            params.append(pytest.param(component, check, marks=marks, id=_test_id(component, check)))
    if isinstance(expected_failed_checks, Mapping) and not set(expected_failed_checks) <= named:
        unknown = ", ".join(sorted(set(expected_failed_checks) - named))
        raise ValueError(f"expected_failed_checks: no check {unknown} runs on these components (checks: {', '.join(sorted(named))})")
    return params


def parametrize_with_checks(
    components: Iterable[Subject],
    *,
    expected_failed_checks: Mapping[str, str] | Callable[[Subject], Mapping[str, str]] | None = None,
    **options: Any,
) -> Any:
    """A ``pytest.mark.parametrize`` over (component, check): one test per named check of each component.

    ::

        @salplug.testing.parametrize_with_checks([Sharpen])
        def test_conformance(component, check):
            check(component)

    Classes are built with their `example_config`. `expected_failed_checks` maps check names
    to the reason they fail (for every listed component, or a function of the component
    returning that map): those tests are strict xfails, so a fixed one fails until its entry
    goes. `options` are `check_component`'s keywords (``atol``, ``devices``, ...).
    """
    import pytest

    params = check_params(list(components), expected_failed_checks, **options)
    return pytest.mark.parametrize(("component", "check"), params)


def plugin_components(name: str) -> list[type[Configurable]]:
    """Every class the installed plugin or distribution `name` registered, of every kind."""
    from salplug.host._manager import get_host

    host = get_host()
    infos = [info for info in host.plugins.values() if name in (info.name, info.distribution)]
    if not infos:
        known = ", ".join(sorted({i.name for i in host.plugins.values()} | {i.distribution for i in host.plugins.values()}))
        raise LookupError(f"conformance: no installed plugin or distribution named {name!r} (installed: {known})")
    return [host.registries[kind].entries[n].cls for info in infos for kind, names in info.components.items() for n in names]


def conformance_tests(*names: str, **options: Any) -> Callable[..., None]:
    """A pytest test over (component, check) for every class of the named plugins or distributions.

    In a plugin's test suite: ``test_conformance = salplug.testing.conformance_tests("salplug-sharpen")``;
    `options` are `parametrize_with_checks`'s (``expected_failed_checks``, ``atol``, ...).
    """
    classes = [cls for name in names for cls in plugin_components(name)]

    @parametrize_with_checks(classes, **options)
    def test_conformance(component, check) -> None:
        check(component)

    return test_conformance
