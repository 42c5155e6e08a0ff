"""The conformance kit passes every built-in and the example plugin, and each check fails a component
that breaks its rule, naming what was expected and what came."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from pydantic import ConfigDict, Field
from torch import nn

import salplug
import salplug.testing
from salplug.components import input_field
from salplug.data import write_map
from salplug.testing import Check, ConformanceError, all_checks, check_component, check_config, checks_for

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_refiner"


@salplug.testing.parametrize_with_checks(salplug.testing.plugin_components("builtins"))
def test_builtins_conform(component, check):
    check(component)


@pytest.fixture
def sharpen(monkeypatch):
    """The example plugin's module, imported from its source folder without installing it."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return importlib.import_module("salplug_sharpen")


def test_given_prior_conforms_with_maps_on_disk(tmp_path):
    generator = torch.Generator().manual_seed(1)
    images = torch.rand((3, 3, 37, 53), generator=generator)
    keys = ["cat", "dog", "owl"]
    for key in keys:
        write_map(tmp_path / f"{key}.png", torch.rand((37, 53), generator=generator))
    check_component(salplug.get_component("prior", "given"), config={"root": tmp_path}, images=images, keys=keys)


def test_example_sharpen_refiner_conforms(sharpen):
    check_component(sharpen.Sharpen)
    check_component(sharpen.Sharpen, config={"gamma": 0.5})
    check_component(sharpen.Sharpen(gamma=40.0))


def test_misuse_of_the_kit_is_a_type_error():
    with pytest.raises(TypeError, match="not with an instance"):
        check_component(salplug.build("postprocessor", "normalize"), config={"eps": 0.1})
    with pytest.raises(TypeError, match="expected a salplug component or trainer class or instance, got 42"):
        check_component(42)


# Toy components, each breaking one rule


class Shrinking(salplug.Refiner):
    name = "shrinking"

    def forward(self, image, saliency):
        return saliency[..., :-1]


class Binary(salplug.Refiner):
    name = "binary"

    def forward(self, image, saliency):
        return saliency > 0.5


class Doubling(salplug.Refiner):
    name = "doubling"

    def forward(self, image, saliency):
        return saliency * 2


class Poisoned(salplug.PostProcessor):
    name = "poisoned"

    def forward(self, image, saliency):
        return saliency.masked_fill(saliency > 0.9, float("nan"))


class Transposed(salplug.Refiner):
    name = "transposed"

    def forward(self, image, saliency):
        return saliency.transpose(-1, -2)


class BatchStretch(salplug.Refiner):
    name = "batch-stretch"

    def forward(self, image, saliency):
        return (saliency - saliency.min()) / (saliency.max() - saliency.min())


class StatefulBatchStretch(BatchStretch):
    name = "stateful-batch-stretch"
    stateful = True


class Noisy(salplug.Refiner):
    name = "noisy"

    def forward(self, image, saliency):
        return (saliency + 0.1 * torch.rand_like(saliency)).clamp(0, 1)


class Loose(salplug.Refiner):
    name = "loose"

    class Config(salplug.ComponentConfig):
        model_config = ConfigDict(extra="allow", frozen=True)

    def forward(self, image, saliency):
        return saliency


class Swallowing(salplug.Refiner):
    name = "swallowing"

    def __init__(self, config=None, **options):
        super().__init__(config)

    def forward(self, image, saliency):
        return saliency


class Forgetful(salplug.Refiner):
    name = "forgetful"
    example_config = {"strength": 0.5}

    class Config(salplug.ComponentConfig):
        strength: float = Field(default=0.0, exclude=True, description="Ignored.")

    def forward(self, image, saliency):
        return saliency


class Undocumented(salplug.Refiner):
    name = "undocumented"

    class Config(salplug.ComponentConfig):
        strength: float = 1.0

    def forward(self, image, saliency):
        return saliency


class InPlace(salplug.PostProcessor):
    name = "in-place"

    def forward(self, image, saliency):
        return saliency.pow_(2)


class Elsewhere(salplug.PriorProvider):
    name = "elsewhere"

    def forward(self, image, keys=None):
        return torch.zeros(image.shape[0], 1, *image.shape[-2:], device="meta")


class BadName(salplug.Refiner):
    name = "Bad Name"


class Gain(salplug.Refiner):
    """A learned gain on the map: the weights round trip passes."""

    name = "gain"
    learned = True

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.gain = nn.Parameter(torch.tensor(0.5))

    def forward(self, image, saliency):
        return (saliency * self.gain).clamp(0, 1)


class Unregistered(salplug.Refiner):
    """Draws its gain at random into a plain attribute, which checkpoints never see."""

    name = "unregistered"
    learned = True

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.gain = torch.rand(())

    def forward(self, image, saliency):
        return (saliency * self.gain).clamp(0, 1)


class Summed(salplug.Metric):
    name = "summed"

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.total = 0.0

    def update(self, saliency, mask):
        per_image = saliency.flatten(1).mean(dim=1)
        self.total += float(per_image.sum())
        return {"mean": per_image}

    def compute(self):
        return {"total": self.total}

    def reset(self):
        self.total = 0.0

    def merge(self, other):
        self.total += other.total


class Pooled(Summed):
    name = "pooled"

    def update(self, saliency, mask):
        return {"mean": super().update(saliency, mask)["mean"].mean()}


class TensorTotal(Summed):
    name = "tensor-total"

    def compute(self):
        return {"total": torch.tensor(self.total)}


class Sticky(Summed):
    name = "sticky"

    def reset(self):
        pass


class Unmerged(Summed):
    name = "unmerged"

    def merge(self, other):
        pass


class Tiny(salplug.Backbone):
    name = "tiny"

    class Config(salplug.ComponentConfig):
        width: int = Field(default=4, ge=1, description="Channels of the first level.")

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        width = self.config.width
        self.stem = nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)

    @property
    def channels(self):
        return [self.config.width, 2 * self.config.width]

    @property
    def strides(self):
        return [2, 4]

    def forward(self, image):
        shallow = self.stem(image)
        return [shallow, self.down(shallow)]


class Miscounted(Tiny):
    name = "miscounted"

    @property
    def channels(self):
        return [self.config.width, 3 * self.config.width]


class Misstrided(Tiny):
    name = "misstrided"

    @property
    def strides(self):
        return [2, 8]


class Shallow(Tiny):
    name = "shallow"

    def forward(self, image):
        return super().forward(image)[:1]


class Job(salplug.Trainer):
    """A trainer that keeps every rule."""

    name = "job"

    class Config(salplug.ComponentConfig):
        data: str = input_field(default="data", description="Dataset folder.")
        extra: list[str] = input_field(default_factory=lambda: ["more"], description="More folders.")
        out: str = Field(default="runs/job/job.pt", description="Checkpoint to write.")
        steps: int = Field(default=3, ge=1, description="Steps to take.")

    example_config = {"steps": 2}

    def run(self):
        return Path(self.config.out)


class Idle(Job):
    name = "idle"
    run = salplug.Trainer.run


class Terse(Job):
    name = "terse"

    def command(self):
        return f"salplug train {self.name}"


class Trusting(Job):
    name = "trusting"

    def check_inputs(self):
        pass


class Littering(Job):
    name = "littering"

    class Config(Job.Config):
        out: str = Field(default="/tmp/job.pt", description="Checkpoint to write.")


BROKEN = [
    (BadName, "check_registration", r"registration: .*name must be lower-case .* got 'Bad Name'"),
    (Loose, "check_registration", r"registration: .*Loose\.Config must keep extra='forbid'"),
    (Forgetful, "check_config_round_trip", r"config round trip .*: expected Config\(strength=0\.5\), got .*=0\.0\)"),
    (Swallowing, "check_config_forbids_extra", r"unknown option through the constructor: expected salplug\.ConfigError .* accepted"),
    (Undocumented, "check_config_documented", r"config fields: expected a description on every field, got none on strength"),
    (Shrinking, "check_output_shape", r"output shape on cpu: expected \(2, 1, 32, 32\), got \(2, 1, 32, 31\)"),
    (Binary, "check_output_shape", r"output dtype on cpu: expected a floating-point dtype, got torch\.bool"),
    (Doubling, "check_output_range", r"output range on cpu: expected values in \[0, 1\], got min .* and max 1\.99\d$"),
    (Poisoned, "check_output_range", r"output values on cpu: expected finite values, got \d+ NaN or infinite of 2048"),
    (Transposed, "check_keeps_size", r"output size on cpu: expected 29×43, the input's, got 43×29"),
    (InPlace, "check_inputs_untouched", r"input 'saliency' on cpu: expected inputs left untouched, got it modified in place"),
    (BatchStretch, "check_batch_independence", r"batch independence on cpu: expected image 0 run alone to match .* within 1e-05"),
    (Elsewhere, "check_device_move", r"output device on cpu: expected cpu, got meta"),
    (Noisy, "check_determinism", r"determinism on cpu: expected equal outputs from two copies within 1e-05, got a max"),
    (Unregistered, "check_weights_round_trip", r"weights round trip: expected the saved component's output within 1e-05 .*, got a max"),
    (Miscounted, "check_output_shape", r"feature level 1 shape on cpu: expected \(2, 12, H, W\), got \(2, 8, 8, 8\)"),
    (Misstrided, "check_backbone_levels", r"feature level 1 size: expected about 4\.0×4\.0 for stride 8 on 32×32, got 8×8"),
    (Shallow, "check_backbone_levels", r"feature levels: expected 2 \(len\(channels\)\), got 1"),
    (Pooled, "check_metric_update", r"update\(\) score 'mean' shape on cpu: expected \(2,\), got \(\)"),
    (TensorTotal, "check_metric_compute", r"compute\(\) score 'total' on cpu: expected a finite Python float, got tensor\("),
    (Sticky, "check_metric_reset", r"reset\(\) on cpu: expected compute\(\) after reset and the same update to give \{'total': "),
    (Unmerged, "check_metric_merge", r"merge\(\) on cpu: expected the merged copies to compute \{'total': "),
    (Idle, "check_trainer_run", r"run\(\): expected Idle\.run, returning the checkpoint's path, got Trainer\.run"),
    (Terse, "check_trainer_command", r"command\(\) options: expected Config\(.*steps=2\), got Config\(.*steps=3\) from "),
    (Trusting, "check_trainer_inputs", r"check_inputs\(\): expected TrainerInputError naming 'data', which does not exist"),
    (Littering, "check_trainer_out", r"default out: expected a relative path under runs/, got '/tmp/job\.pt'"),
]


@pytest.mark.parametrize(("component", "name", "message"), BROKEN, ids=[f"{c.__name__}-{n}" for c, n, _ in BROKEN])
def test_each_check_fails_a_component_that_breaks_its_rule(component, name, message):
    check = {c.name: c for c in all_checks(component)}[name]
    with pytest.raises(ConformanceError, match=message) as caught:
        check(component)
    assert caught.value.subject == f"{component.kind} {component.name!r} ({component.__qualname__})"


def test_every_check_has_a_broken_component_above():
    every = {f.__name__ for group in salplug.testing.checks.CHECKS.values() for f in group} | {"check_weights_round_trip"}
    assert every == {name for _, name, _ in BROKEN}


@pytest.mark.parametrize("component", [Gain, Summed, Job, Tiny, StatefulBatchStretch], ids=lambda c: c.__name__)
def test_conforming_toys_pass_every_check(component):
    check_component(component)


def test_checks_follow_kind_and_capabilities():
    def names(cls):
        return {f.__name__ for f in checks_for(cls)}

    assert "check_batch_independence" not in names(StatefulBatchStretch) and "check_batch_independence" in names(BatchStretch)
    assert "check_weights_round_trip" in names(Gain) and "check_weights_round_trip" not in names(Noisy)
    assert "check_metric_merge" in names(Summed) and "check_metric_merge" not in names(salplug.Metric)
    assert {"check_trainer_inputs", "check_trainer_out"} <= names(Job)
    assert not names(Job) & {"check_output_shape", "check_device_move"}


def test_check_component_reports_every_broken_check():
    with pytest.raises(ConformanceError) as caught:
        check_component(Shrinking)
    failures = caught.value.failures
    assert {"check_output_shape", "check_keeps_size"} <= set(failures)
    assert "check_registration" not in failures
    message = str(caught.value)
    assert message.startswith(f"refiner 'shrinking' (Shrinking): conformance: expected all {len(checks_for(Shrinking))} checks")
    assert "\n  check_output_shape: output shape on cpu: expected (2, 1, 32, 32), got (2, 1, 32, 31)" in message


class Counted(salplug.Refiner):
    """Records the shape of every batch it is called on, across copies."""

    name = "counted"
    calls: list = []

    def forward(self, image, saliency):
        Counted.calls.append(tuple(image.shape))
        return saliency


def test_the_checks_of_one_component_share_one_call_on_the_main_batch():
    Counted.calls.clear()
    check_component(Counted)
    devices = len(salplug.testing.default_devices())
    # per device: the call the checks share, and the determinism check's second copy
    assert Counted.calls.count((2, 3, 32, 32)) == 2 * devices, Counted.calls
    assert Counted.calls.count((1, 3, 32, 32)) == 2 * devices and Counted.calls.count((2, 3, 29, 43)) == 1


def test_instances_are_checked_on_copies():
    metric = Summed()
    metric.total = 5.0
    check_component(metric)
    assert metric.total == 5.0


def test_check_config_returns_the_validated_config():
    config = check_config(salplug.get_component("postprocessor", "median"), {"size": 7})
    assert config.size == 7


def test_a_class_needing_options_without_an_example_is_skipped():
    class Rooted(salplug.PriorProvider):
        name = "rooted"

        class Config(salplug.ComponentConfig):
            root: str = Field(description="Somewhere.")

    with pytest.raises(pytest.skip.Exception, match=r"needs options \(root\): give it an example_config"):
        Check(checks_for(Rooted)[0])(Rooted)


def test_parametrize_with_checks_gives_one_test_per_check_and_strict_xfails():
    mark = salplug.testing.parametrize_with_checks(
        [Doubling, Summed], expected_failed_checks={"check_output_range": "doubles the map"}
    )
    params = mark.args[1]
    assert [p.id for p in params[:2]] == ["refiner:doubling-check_registration", "refiner:doubling-check_config_round_trip"]
    assert len(params) == len(checks_for(Doubling)) + len(checks_for(Summed))
    marked = [(p.id, m.kwargs) for p in params for m in p.marks]
    assert marked == [("refiner:doubling-check_output_range", {"reason": "doubles the map", "strict": True})]


def test_an_instance_is_named_with_the_options_it_changes():
    params = salplug.testing.parametrize_with_checks([Tiny(width=3), Tiny()]).args[1]
    assert params[0].id == "backbone:tiny(width=3)-check_registration"
    assert params[len(checks_for(Tiny))].id == "backbone:tiny()-check_registration"


def test_expected_failed_checks_name_checks_that_run():
    with pytest.raises(ValueError, match=r"no check check_output_rnage runs"):
        salplug.testing.parametrize_with_checks([Doubling], expected_failed_checks={"check_output_rnage": "typo"})
    with pytest.raises(ValueError, match=r"for refiner 'doubling' \(Doubling\): no check check_metric_merge runs on it"):
        salplug.testing.parametrize_with_checks([Doubling], expected_failed_checks=lambda c: {"check_metric_merge": "x"})


def test_an_expected_failure_that_passes_fails_the_run(tmp_path):
    (tmp_path / "test_toy.py").write_text(textwrap.dedent("""
        import torch
        import salplug
        import salplug.testing


        class Doubling(salplug.Refiner):
            name = "doubling"

            def forward(self, image, saliency):
                return saliency * 2


        @salplug.testing.parametrize_with_checks([Doubling], expected_failed_checks={
            "check_output_range": "doubles the map", "check_determinism": "not really"})
        def test_conformance(component, check):
            check(component)
    """))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rxX", str(tmp_path / "test_toy.py")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "XFAIL test_toy.py::test_conformance[refiner:doubling-check_output_range] - doubles the map" in done.stdout
    assert "_ test_conformance[refiner:doubling-check_determinism] _" in done.stdout
    assert "[XPASS(strict)] not really" in done.stdout
    assert f"1 failed, {len(checks_for(Doubling)) - 2} passed, 1 xfailed" in done.stdout


def test_conformance_tests_builds_one_test_per_component_and_check():
    test = salplug.testing.conformance_tests("builtins")
    params = next(m for m in test.pytestmark if m.name == "parametrize").args[1]
    ids = {p.id for p in params}
    assert {"postprocessor:median-check_batch_independence", "metric:mae-check_metric_merge", "prior:center-check_keeps_size"} <= ids
    median = next(p for p in params if p.id == "postprocessor:median-check_output_range")
    test(*median.values)
