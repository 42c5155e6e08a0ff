"""The named conformance checks: each one rule of the contract, run on a prepared `Case`.

A check takes a `Case` (the component's class, a factory of fresh copies, the devices and
the inputs) and raises `ConformanceError` naming what was expected and what came when the
component breaks its rule. `checks_for` lists the checks that apply to a class, by kind and
capability (`stateful`, `learned`, `merge`, input fields of trainers).
"""

from __future__ import annotations

import json
import math
import shlex
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from salplug.components._base import BASES, INPUT_MARK, KINDS, Component, ComponentConfig, Configurable, Metric, Trainer
from salplug.errors import ConfigError, SalplugError
from salplug.host._registry import Registrar, Registry
from salplug.pipeline import parse_settings

UNKNOWN_OPTION = "salplug_conformance_unknown_option"
"""The option name fed to a `Config` to prove it rejects fields it does not declare."""

MAP_KINDS = ("prior", "refiner", "postprocessor")


class ConformanceError(AssertionError):
    """A component broke a rule that every salplug component keeps."""

    def __init__(self, subject: str, check: str, expected: str, got: str):
        self.subject, self.check, self.expected, self.got = subject, check, expected, got
        self.failures: dict[str, ConformanceError] = {}
        """Each broken check's own error, by check name, when `check_component` found several."""
        super().__init__(f"{subject}: {check}: expected {expected}, got {got}")


def describe(cls: type) -> str:
    """How errors name a component: kind, registry name and class."""
    return f"{getattr(cls, 'kind', '?') or '?'} {getattr(cls, 'name', '?')!r} ({cls.__qualname__})"


@dataclass(frozen=True)
class Inputs:
    """One batch for a component: images, maps, masks and keys of the same B, H and W."""

    images: Tensor
    maps: Tensor
    masks: Tensor
    keys: tuple[str, ...]

    @property
    def size(self) -> tuple[int, int]:
        return self.images.shape[-2], self.images.shape[-1]

    def rows(self, index: slice) -> Inputs:
        return Inputs(self.images[index], self.maps[index], self.masks[index], self.keys[index])

    def to(self, device: str) -> Inputs:
        return Inputs(self.images.to(device), self.maps.to(device), self.masks.to(device), self.keys)


@dataclass(frozen=True)
class Case:
    """What every check runs on: a class, fresh copies of the component, devices and inputs.

    `make` returns a new copy on the CPU (a `Trainer` for trainer classes); `batch` is the
    main input, `other` a second batch of the same size (metrics accumulate it), `sizes`
    every batch the size check runs (the main one and, with random data, an odd H×W).
    `runs` holds the `Run` of each device, shared by the cases of one component's checks.
    """

    cls: type[Configurable]
    config: ComponentConfig
    make: Callable[[], Any]
    devices: tuple[str, ...]
    atol: float
    batch: Inputs
    other: Inputs
    sizes: tuple[Inputs, ...]
    runs: dict[str, Run] = field(default_factory=dict, compare=False)

    @property
    def subject(self) -> str:
        return describe(self.cls)

    def fail(self, check: str, expected: str, got: str) -> ConformanceError:
        return ConformanceError(self.subject, check, expected, got)


def _clone(value: Any) -> Any:
    return value.clone() if isinstance(value, Tensor) else value


def _arguments(case: Case, inputs: Inputs) -> dict[str, Any]:
    """The call's arguments by kind, as fresh tensors: a component that writes into them spoils nothing."""
    kind = case.cls.kind
    if kind == "prior":
        return {"image": inputs.images.clone(), "keys": list(inputs.keys)}
    if kind == "metric":
        return {"saliency": inputs.maps.clone(), "mask": inputs.masks.clone()}
    if kind == "backbone":
        return {"image": inputs.images.clone()}
    return {"image": inputs.images.clone(), "saliency": inputs.maps.clone()}


def _invoke(case: Case, component: Any, arguments: dict[str, Any]) -> Any:
    return (component.update if case.cls.kind == "metric" else component)(**arguments)


@dataclass(frozen=True)
class Run:
    """A fresh copy moved to a device and called once on the main batch, with the arguments as
    they were before and after the call: the output, range, size, device, batch, determinism
    and untouched-input checks all look at this one call instead of each making their own."""

    component: Any
    inputs: Inputs
    before: dict[str, Any]
    arguments: dict[str, Any]
    out: Any


def _first_run(case: Case, device: str) -> Run:
    """The case's `Run` on `device`, made on first use."""
    if device not in case.runs:
        component = case.make().to(device).eval()
        moved = case.batch.to(device)
        arguments = _arguments(case, moved)
        before = {what: _clone(value) for what, value in arguments.items()}
        out = _invoke(case, component, arguments)
        case.runs[device] = Run(component, moved, before, arguments, out)
    return case.runs[device]


def _first_outputs(case: Case, device: str, where: str | None = None) -> list[Tensor]:
    """`_outputs` of the case's first run on `device`; errors say `where` (else on which device)."""
    run = _first_run(case, device)
    return _checked(case, run.component, run.out, run.inputs, _on(device) if where is None else where)


def _outputs(case: Case, component: Any, inputs: Inputs, device: str, where: str) -> list[Tensor]:
    """Run a map component or backbone on `inputs` (on `device`); its outputs as a list, checked by `_checked`."""
    moved = inputs.to(device)
    return _checked(case, component, _invoke(case, component, _arguments(case, moved)), moved, where)


def _checked(case: Case, component: Any, out: Any, moved: Inputs, where: str) -> list[Tensor]:
    """The outputs of a call on `moved` as a list, checked for type, batch, channels, dtype and device:
    what every other check needs before comparing values."""
    batch = moved.images.shape[0]
    if case.cls.kind == "backbone":
        if not isinstance(out, list) or not all(isinstance(f, Tensor) for f in out):
            got = type(out).__name__ if not isinstance(out, list) else f"a list of {[type(f).__name__ for f in out]}"
            raise case.fail(f"forward() result{where}", "a list of feature tensors", got)
        if len(out) != len(component.channels):
            raise case.fail(f"feature levels{where}", f"{len(component.channels)} (len(channels))", str(len(out)))
        shapes = [(batch, c) for c in component.channels]
        names = [f"feature level {i}" for i in range(len(out))]
    else:
        if not isinstance(out, Tensor):
            raise case.fail(f"output{where}", "a tensor", type(out).__name__)
        out = [out]
        shapes, names = [(batch, 1)], ["output"]
    for tensor, (b, c), name in zip(out, shapes, names):
        if tensor.ndim != 4 or tuple(tensor.shape[:2]) != (b, c):
            raise case.fail(f"{name} shape{where}", f"({b}, {c}, H, W)", str(tuple(tensor.shape)))
        if not tensor.is_floating_point():
            raise case.fail(f"{name} dtype{where}", "a floating-point dtype", str(tensor.dtype))
        if tensor.device != moved.images.device:
            raise case.fail(f"{name} device{where}", str(moved.images.device), str(tensor.device))
    return [t.detach() for t in out]


def _on(device: str) -> str:
    return f" on {device}"


def _largest_difference(a: list[Tensor], b: list[Tensor]) -> float:
    if [t.shape for t in a] != [t.shape for t in b]:
        return math.inf
    return max(float((x.double() - y.double()).abs().nan_to_num(math.inf).max()) for x, y in zip(a, b))


def _tolerance(case: Case, reference: list[Tensor]) -> float:
    """`atol` for maps; for features, `atol` times their largest magnitude (they have no fixed range)."""
    scale = max(float(t.abs().max()) if t.numel() else 0.0 for t in reference)
    return case.atol * max(1.0, scale)


# Every kind, trainers included


def check_registration(case: Case) -> None:
    """The plugin host accepts the class: a valid kind, registry name and `Config`."""
    kind = getattr(case.cls, "kind", None)
    if kind not in BASES:
        raise case.fail("kind", f"one of {', '.join(KINDS)}", repr(kind))
    try:
        Registrar(Registry(kind), "conformance", "conformance")(case.cls)
    except SalplugError as err:
        raise case.fail("registration", "a class the plugin host accepts", str(err)) from None


def check_config_round_trip(case: Case) -> None:
    """The config survives ``model_dump(mode="json")``, JSON text and YAML text unchanged, as chain specs store it."""
    data = case.config.model_dump(mode="json")
    try:
        copies = {
            "model_dump(mode='json')": data,
            "JSON text": json.loads(json.dumps(data)),
            "YAML text": yaml.safe_load(yaml.safe_dump(data)),
        }
    except (TypeError, ValueError, yaml.YAMLError) as err:
        raise case.fail("config serialisation", "JSON and YAML-safe values", str(err)) from None
    for how, payload in copies.items():
        check = f"config round trip through {how}"
        try:
            again = case.cls.make_config(payload)
        except ConfigError as err:
            raise case.fail(check, f"{payload!r} to validate again", str(err)) from None
        if again != case.config:
            raise case.fail(check, repr(case.config), repr(again))


def check_config_forbids_extra(case: Case) -> None:
    """An unknown option is a `salplug.ConfigError` naming it, through `make_config` and the constructor."""
    bad = {**case.config.model_dump(mode="json"), UNKNOWN_OPTION: 1}
    attempts: dict[str, Callable[[], object]] = {
        "make_config": lambda: case.cls.make_config(bad),
        "the constructor": lambda: case.cls(**bad),
    }
    for how, attempt in attempts.items():
        check = f"unknown option through {how}"
        expected = f"salplug.ConfigError naming {UNKNOWN_OPTION!r}"
        try:
            attempt()
        except ConfigError as err:
            if not any(UNKNOWN_OPTION in field for field, _ in err.problems):
                raise case.fail(check, expected, str(err)) from None
            continue
        except Exception as err:
            raise case.fail(check, expected, f"{type(err).__name__}: {err}") from None
        raise case.fail(check, expected, "the option accepted (does Config keep extra='forbid'?)")


def check_config_documented(case: Case) -> None:
    """Every `Config` field has a description: `salplug train NAME --show` and the spec schema print it."""
    bare = [name for name, info in case.cls.Config.model_fields.items() if not (info.description or "").strip()]
    if bare:
        raise case.fail("config fields", "a description on every field", f"none on {', '.join(bare)}")


# Priors, refiners, post-processors, backbones


def check_output_shape(case: Case) -> None:
    """A map component returns a float ``B×1×H×W`` tensor on the input's device; a backbone one
    ``B×C×h×w`` tensor per declared level."""
    h, w = case.batch.size
    for device in case.devices:
        outputs = _first_outputs(case, device)
        if case.cls.kind in MAP_KINDS and tuple(outputs[0].shape[-2:]) != (h, w):
            expected = (case.batch.images.shape[0], 1, h, w)
            raise case.fail(f"output shape{_on(device)}", str(expected), str(tuple(outputs[0].shape)))


def check_output_range(case: Case) -> None:
    """Outputs are finite; maps lie in [0, 1]."""
    for device in case.devices:
        for i, out in enumerate(_first_outputs(case, device)):
            name = "output" if case.cls.kind in MAP_KINDS else f"feature level {i}"
            bad = int((~torch.isfinite(out)).sum())
            if bad:
                raise case.fail(f"{name} values{_on(device)}", "finite values", f"{bad} NaN or infinite of {out.numel()}")
            if case.cls.kind in MAP_KINDS:
                lo, hi = float(out.min()), float(out.max())
                if lo < 0.0 or hi > 1.0:
                    raise case.fail(f"output range{_on(device)}", "values in [0, 1]", f"min {lo:.4g} and max {hi:.4g}")


def check_keeps_size(case: Case) -> None:
    """A map keeps its image's height and width, odd and non-square sizes included."""
    device = case.devices[0]
    component = case.make().to(device).eval()
    for inputs in case.sizes:
        h, w = inputs.size
        out = (_first_outputs(case, device) if inputs is case.batch else _outputs(case, component, inputs, device, _on(device)))[0]
        got = tuple(out.shape[-2:])
        if got != (h, w):
            raise case.fail(f"output size{_on(device)}", f"{h}×{w}, the input's", f"{got[0]}×{got[1]}")


def check_backbone_levels(case: Case) -> None:
    """A backbone declares one stride per channel count and returns that many feature maps, each its
    channels and about H/stride × W/stride, on every input size."""
    backbone = case.make().eval()
    channels, strides = list(backbone.channels), list(backbone.strides)
    if len(channels) != len(strides):
        raise case.fail("declared levels", f"{len(channels)} strides, one per channel count", str(strides))
    for inputs in case.sizes:
        h, w = inputs.size
        features = _first_outputs(case, "cpu", "") if inputs is case.batch else _outputs(case, backbone, inputs, "cpu", "")
        for level, (feature, s) in enumerate(zip(features, strides)):
            fh, fw = feature.shape[-2:]
            if abs(fh - h / s) >= 1 or abs(fw - w / s) >= 1:
                raise case.fail(
                    f"feature level {level} size", f"about {h / s:.1f}×{w / s:.1f} for stride {s} on {h}×{w}", f"{fh}×{fw}"
                )


def check_inputs_untouched(case: Case) -> None:
    """The component leaves its input tensors and keys as they were (no in-place writes)."""
    for device in case.devices:
        run = _first_run(case, device)
        for what, value in run.arguments.items():
            old = run.before[what]
            if isinstance(value, Tensor):
                if not torch.equal(value, old):
                    change = float((value.detach().double() - old.double()).abs().nan_to_num(math.inf).max())
                    raise case.fail(
                        f"input {what!r}{_on(device)}", "inputs left untouched", f"it modified in place (max change {change:.3g})"
                    )
            elif value != old:
                raise case.fail(f"input {what!r}{_on(device)}", f"{old!r} left untouched", repr(value))


def check_batch_independence(case: Case) -> None:
    """Each image run alone gives its row of the batch output (components that are not `stateful`)."""
    batch = case.batch.images.shape[0]
    for device in case.devices:
        together = _first_outputs(case, device)
        component = case.make().to(device).eval()
        for i in range(batch):
            alone = _outputs(case, component, case.batch.rows(slice(i, i + 1)), device, _on(device))
            diff, tolerance = _largest_difference(alone, [t[i : i + 1] for t in together]), _tolerance(case, together)
            if not diff <= tolerance:
                raise case.fail(
                    f"batch independence{_on(device)}",
                    f"image {i} run alone to match its row of the batch output within {tolerance:.3g} "
                    f"(set stateful = True if outputs depend on other images)",
                    f"a max abs difference of {diff:.3g}",
                )


def check_device_move(case: Case) -> None:
    """Built on the CPU then moved with ``.to(device)``, every parameter and buffer is on that device,
    and so is the output."""
    for device in case.devices:
        component = case.make().to(device).eval()
        target = torch.device(device)
        for what, tensor in [*component.named_parameters(), *component.named_buffers()]:
            if tensor.device.type != target.type:
                raise case.fail(f"{what!r} after .to({device!r})", f"a tensor on {device}", f"one on {tensor.device}")
        _first_outputs(case, device)


def check_determinism(case: Case) -> None:
    """Two copies of the component give the same output for the same input."""
    for device in case.devices:
        first = _first_outputs(case, device)
        second = _outputs(case, case.make().to(device).eval(), case.batch, device, _on(device))
        diff, tolerance = _largest_difference(first, second), _tolerance(case, first)
        if not diff <= tolerance:
            raise case.fail(
                f"determinism{_on(device)}", f"equal outputs from two copies within {tolerance:.3g}",
                f"a max abs difference of {diff:.3g}",
            )


def _perturb(component: Component, generator: torch.Generator) -> None:
    """Scale the stored floating state by random factors near 1, rounded to what the checkpoint keeps."""
    with torch.no_grad():
        for key, tensor in component.state_dict(keep_vars=True).items():
            if key.startswith(component.checkpoint_skip) or not tensor.is_floating_point():
                continue
            noise = 1 + 0.05 * torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
            scaled = tensor.detach() * noise.to(tensor.device, tensor.dtype)
            if component.checkpoint_dtype is not None:
                scaled = scaled.to(component.checkpoint_dtype).to(tensor.dtype)
            tensor.data.copy_(scaled)


def check_weights_round_trip(case: Case) -> None:
    """A learned component's weights, saved with `save_weights` and loaded with `load_weights` into one
    built anew from its config (under another seed), give the same output.

    The parts under `checkpoint_skip` are copied over first, as their weight tag would rebuild them.
    """
    trained = case.make().eval()
    _perturb(trained, torch.Generator().manual_seed(0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        fresh = case.cls(case.config).eval()
    skipped = {k: v for k, v in trained.state_dict().items() if k.startswith(trained.checkpoint_skip)}
    fresh.load_state_dict(skipped, strict=False)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{case.cls.name}.pt"
        trained.save_weights(path)
        fresh.load_weights(path)
    if fresh.untrained:
        raise case.fail("weights after load_weights", "untrained False (weights_from set)", f"weights_from {fresh.weights_from!r}")
    expected = _outputs(case, trained, case.batch, "cpu", "")
    got = _outputs(case, fresh, case.batch, "cpu", "")
    diff, tolerance = _largest_difference(got, expected), _tolerance(case, expected)
    if not diff <= tolerance:
        raise case.fail(
            "weights round trip",
            f"the saved component's output within {tolerance:.3g} (is every weight a parameter or buffer?)",
            f"a max abs difference of {diff:.3g}",
        )


# Metrics


def _scores(case: Case, scores: Any, batch: int, where: str) -> dict[str, Tensor]:
    if not isinstance(scores, Mapping) or not scores:
        raise case.fail(f"update() result{where}", "a non-empty dict of per-image score tensors", repr(scores))
    for key, value in scores.items():
        what = f"update() score {key!r}{where}"
        if not isinstance(value, Tensor):
            raise case.fail(what, f"a tensor of shape ({batch},)", type(value).__name__)
        if tuple(value.shape) != (batch,):
            raise case.fail(f"update() score {key!r} shape{where}", str((batch,)), str(tuple(value.shape)))
        if not value.is_floating_point() or not bool(torch.isfinite(value).all()):
            raise case.fail(what, "finite floating-point scores", str(value))
    return dict(scores)


def _totals(case: Case, totals: Any, where: str) -> dict[str, float]:
    if not isinstance(totals, Mapping) or not totals:
        raise case.fail(f"compute() result{where}", "a non-empty dict of floats", repr(totals))
    for key, value in totals.items():
        if not isinstance(value, float) or not math.isfinite(value):
            raise case.fail(f"compute() score {key!r}{where}", "a finite Python float", repr(value))
    return dict(totals)


def _update(case: Case, metric: Metric, inputs: Inputs, device: str) -> dict[str, Tensor]:
    scores = _invoke(case, metric, _arguments(case, inputs.to(device)))
    return _scores(case, scores, inputs.maps.shape[0], _on(device))


def _same_totals(a: dict[str, float], b: dict[str, float], atol: float) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-6, abs_tol=atol) for k in a)


def check_metric_update(case: Case) -> None:
    """`update` returns a dict of per-image score tensors of length B."""
    for device in case.devices:
        metric = case.make().to(device).eval()
        metric.reset()
        _update(case, metric, case.batch, device)


def check_metric_compute(case: Case) -> None:
    """`compute` returns a dict of finite Python floats."""
    for device in case.devices:
        metric = case.make().to(device).eval()
        metric.reset()
        metric.update(**_arguments(case, case.batch.to(device)))
        _totals(case, metric.compute(), _on(device))


def check_metric_reset(case: Case) -> None:
    """`reset` clears what was accumulated: after it, one update computes what it did on a new metric."""
    for device in case.devices:
        metric = case.make().to(device).eval()
        metric.reset()
        metric.update(**_arguments(case, case.batch.to(device)))
        expected = _totals(case, metric.compute(), _on(device))
        metric.update(**_arguments(case, case.other.to(device)))
        metric.reset()
        metric.update(**_arguments(case, case.batch.to(device)))
        got = _totals(case, metric.compute(), _on(device))
        if not _same_totals(got, expected, case.atol):
            raise case.fail(f"reset(){_on(device)}", f"compute() after reset and the same update to give {expected}", str(got))


def check_metric_merge(case: Case) -> None:
    """Two copies that saw one batch each, merged, compute what one copy seeing both does."""
    for device in case.devices:
        whole, left, right = (case.make().to(device).eval() for _ in range(3))
        for metric in (whole, left, right):
            metric.reset()
        whole.update(**_arguments(case, case.batch.to(device)))
        whole.update(**_arguments(case, case.other.to(device)))
        left.update(**_arguments(case, case.batch.to(device)))
        right.update(**_arguments(case, case.other.to(device)))
        left.merge(right)
        expected = _totals(case, whole.compute(), _on(device))
        got = _totals(case, left.compute(), _on(device))
        if not _same_totals(got, expected, case.atol):
            raise case.fail(f"merge(){_on(device)}", f"the merged copies to compute {expected}", str(got))


# Trainers


def check_trainer_run(case: Case) -> None:
    """A trainer defines `run`, the job ``salplug train NAME`` starts."""
    if case.cls.run is Trainer.run:
        raise case.fail("run()", f"{case.cls.__qualname__}.run, returning the checkpoint's path", "Trainer.run, not overridden")


def check_trainer_command(case: Case) -> None:
    """`command()` is a ``salplug train`` line whose ``--set`` options rebuild the same config."""
    trainer = case.make()
    line = trainer.command()
    words = shlex.split(line)
    if words[:3] != ["salplug", "train", case.cls.name]:
        raise case.fail("command()", f"a line starting 'salplug train {case.cls.name}'", repr(line))
    pairs = [words[i + 1] for i, word in enumerate(words[:-1]) if word == "--set"]
    try:
        again = case.cls.make_config(parse_settings(pairs, "FIELD=VALUE"))
    except SalplugError as err:
        raise case.fail("command() options", f"--set options that rebuild {case.config!r}", str(err)) from None
    if again != case.config:
        raise case.fail("command() options", repr(case.config), f"{again!r} from {line!r}")


def input_fields(cls: type[Configurable]) -> list[str]:
    """The `Config` fields a trainer declares with `salplug.components.input_field`."""
    return [name for name, info in cls.Config.model_fields.items()
            if isinstance(info.json_schema_extra, dict) and INPUT_MARK in info.json_schema_extra]


def check_trainer_inputs(case: Case) -> None:
    """`check_inputs` passes when every input field names an existing path and raises
    `TrainerInputError` naming the field when one is missing."""
    from salplug.components._base import TrainerInputError

    fields = input_fields(case.cls)
    with tempfile.TemporaryDirectory() as folder:
        def path_for(field: str, path: str) -> Any:
            return [path] if isinstance(getattr(case.config, field), (list, tuple)) else path

        existing = {field: path_for(field, folder) for field in fields}
        for missing in [None, *fields]:
            options = dict(existing)
            if missing is not None:
                options[missing] = path_for(missing, str(Path(folder) / "missing"))
            try:
                trainer = case.cls(case.config, **options)
            except ConfigError as err:
                raise case.fail("input fields", f"existing paths accepted by {', '.join(fields)}", str(err)) from None
            try:
                trainer.check_inputs()
            except TrainerInputError as err:
                if missing is None or repr(missing) not in str(err):
                    expected = "no error: every input exists" if missing is None else f"an error naming {missing!r}"
                    raise case.fail("check_inputs()", expected, str(err)) from None
                continue
            if missing is not None:
                raise case.fail("check_inputs()", f"TrainerInputError naming {missing!r}, which does not exist", "no error")


def check_trainer_out(case: Case) -> None:
    """The default output path is relative and under ``runs/`` (ignored by git), never under /tmp."""
    default = case.cls.Config.model_fields["out"].get_default(call_default_factory=True)
    parts = Path(str(default)).parts
    if Path(str(default)).is_absolute() or not parts or parts[0] != "runs":
        raise case.fail("default out", "a relative path under runs/", repr(default))


CHECKS: dict[str, tuple[Callable[[Case], None], ...]] = {
    "config": (check_registration, check_config_round_trip, check_config_forbids_extra, check_config_documented),
    "map": (
        check_output_shape, check_output_range, check_keeps_size, check_inputs_untouched,
        check_batch_independence, check_device_move, check_determinism,
    ),
    "backbone": (
        check_output_shape, check_output_range, check_backbone_levels, check_inputs_untouched,
        check_batch_independence, check_device_move, check_determinism,
    ),
    "metric": (check_metric_update, check_metric_compute, check_metric_reset, check_inputs_untouched, check_metric_merge),
    "trainer": (check_trainer_run, check_trainer_command, check_trainer_inputs, check_trainer_out),
}


def checks_for(cls: type[Configurable]) -> list[Callable[[Case], None]]:
    """The checks that apply to `cls`: the config ones, then its kind's, less those its capabilities exclude."""
    kind = getattr(cls, "kind", None)
    group = "map" if kind in MAP_KINDS else kind
    chosen = [*CHECKS["config"], *CHECKS.get(group, ())]
    skipped = set()
    if getattr(cls, "stateful", False):
        skipped.add(check_batch_independence)
    if kind == "metric" and cls.merge is Metric.merge:
        skipped.add(check_metric_merge)
    if kind == "trainer":
        if not input_fields(cls):
            skipped.add(check_trainer_inputs)
        out = cls.Config.model_fields.get("out")
        if out is None or out.is_required():
            skipped.add(check_trainer_out)
    if getattr(cls, "learned", False):
        chosen.append(check_weights_round_trip)
    return [check for check in chosen if check not in skipped]


def random_inputs(seed: int, shape: tuple[int, int, int], keys: Sequence[str]) -> tuple[Inputs, Inputs]:
    """Two seeded random batches of `shape` = (B, H, W): images, maps and masks."""
    generator = torch.Generator().manual_seed(seed)
    batch, height, width = shape

    def one() -> Inputs:
        return Inputs(
            torch.rand((batch, 3, height, width), generator=generator),
            torch.rand((batch, 1, height, width), generator=generator),
            torch.rand((batch, 1, height, width), generator=generator) > 0.5,
            tuple(keys),
        )

    return one(), one()
