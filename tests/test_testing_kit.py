"""The conformance kit accepts every built-in and the example plugin, and names what broken ones break."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from pydantic import ConfigDict, Field
from torch import nn

import salplug
from salplug.data._io import write_map
from salplug.testing import ConformanceError, check_component, check_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_refiner"


@pytest.fixture
def sharpen(monkeypatch):
    """The example plugin's module, imported from its source folder without installing it."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return importlib.import_module("salplug_sharpen")


@pytest.mark.parametrize(
    ("kind", "name", "config"),
    [
        ("prior", "center", None),
        ("prior", "center", {"sigma": 0.1}),
        ("postprocessor", "normalize", None),
        ("postprocessor", "median", None),
        ("postprocessor", "median", {"size": 3, "max_elements": 5000}),
        ("metric", "mae", None),
    ],
)
def test_builtins_conform(kind, name, config):
    check_component(salplug.get_component(kind, name), config=config)


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
    with pytest.raises(TypeError, match="expected a salplug component class or instance, got 42"):
        check_component(42)


class Shrinking(salplug.Refiner):
    name = "shrinking"

    def forward(self, image, saliency):
        return saliency[..., :-1]


class Doubling(salplug.Refiner):
    name = "doubling"

    def forward(self, image, saliency):
        return saliency * 2


class Poisoned(salplug.PostProcessor):
    name = "poisoned"

    def forward(self, image, saliency):
        return saliency.masked_fill(saliency > 0.9, float("nan"))


class BatchStretch(salplug.Refiner):
    name = "batch-stretch"

    def forward(self, image, saliency):
        return (saliency - saliency.min()) / (saliency.max() - saliency.min())


class StatefulBatchStretch(BatchStretch):
    name = "stateful-batch-stretch"
    stateful = True


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

    class Config(salplug.ComponentConfig):
        strength: float = Field(default=0.0, exclude=True)

    def forward(self, image, saliency):
        return saliency


class InPlace(salplug.PostProcessor):
    name = "in-place"

    def forward(self, image, saliency):
        return saliency.pow_(2)


class Binary(salplug.Refiner):
    name = "binary"

    def forward(self, image, saliency):
        return saliency > 0.5


class Elsewhere(salplug.PriorProvider):
    name = "elsewhere"

    def forward(self, image, keys=None):
        return torch.zeros(image.shape[0], 1, *image.shape[-2:], device="meta")


class BadName(salplug.Refiner):
    name = "Bad Name"


@pytest.mark.parametrize(
    ("component", "config", "message"),
    [
        (Shrinking, None, r"output shape: expected \(3, 1, 37, 53\), got \(3, 1, 37, 52\)"),
        (Doubling, None, r"output range: expected values in \[0, 1\], got min .* and max 2$"),
        (Poisoned, None, r"output values: expected finite values, got \d+ NaN or infinite of 5883"),
        (BatchStretch, None, r"batch agreement: expected image 0 run alone to match .* atol=1e-05"),
        (Loose, None, r"registration: .*Loose\.Config must keep extra='forbid'"),
        (Swallowing, None, r"unknown option through the constructor: expected salplug\.ConfigError .* accepted"),
        (Forgetful, {"strength": 0.5}, r"config round trip .*: expected Config\(strength=0\.5\), got .*=0\.0\)"),
        (InPlace, None, r"input 'saliency': expected inputs left untouched, got it modified in place"),
        (Binary, None, r"output dtype: expected a floating-point dtype, got torch\.bool"),
        (Elsewhere, None, r"output device: expected cpu, got meta"),
        (BadName, None, r"registration: .*name must be lower-case .* got 'Bad Name'"),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_broken_components_fail_with_expected_and_got(component, config, message):
    with pytest.raises(AssertionError, match=message) as caught:
        check_component(component, config=config)
    assert isinstance(caught.value, ConformanceError)
    assert f"{component.kind} {component.name!r} ({component.__qualname__})" in str(caught.value)


def test_stateful_refiners_skip_batch_agreement():
    check_component(StatefulBatchStretch)


def test_check_config_returns_the_validated_config():
    config = check_config(salplug.get_component("postprocessor", "median"), {"size": 7})
    assert config.size == 7


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


class Pooled(Summed):
    name = "pooled"

    def update(self, saliency, mask):
        return {"mean": super().update(saliency, mask)["mean"].mean()}


class Sticky(Summed):
    name = "sticky"

    def reset(self):
        pass


class TensorTotal(Summed):
    name = "tensor-total"

    def compute(self):
        return {"total": torch.tensor(self.total)}


def test_a_conforming_metric_passes():
    check_component(Summed)


def test_instances_are_checked_on_copies():
    metric = Summed()
    metric.total = 5.0
    check_component(metric)
    assert metric.total == 5.0


@pytest.mark.parametrize(
    ("component", "message"),
    [
        (Pooled, r"update\(\) score 'mean' shape: expected \(3,\), got \(\)"),
        (Sticky, r"reset\(\): expected compute\(\) after reset and the same update to give \{'total': "),
        (TensorTotal, r"compute\(\) score 'total': expected a finite Python float, got tensor\("),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_broken_metrics_fail(component, message):
    with pytest.raises(AssertionError, match=message):
        check_component(component)


class Tiny(salplug.Backbone):
    name = "tiny"

    class Config(salplug.ComponentConfig):
        width: int = Field(default=4, ge=1)

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


def test_a_conforming_backbone_passes():
    check_component(Tiny, config={"width": 3})


@pytest.mark.parametrize(
    ("component", "message"),
    [
        (Miscounted, r"feature level 1 shape: expected \(3, 12, 10, 14\), got \(3, 8, 10, 14\)"),
        (Misstrided, r"feature level 1 size: expected about 4\.6×6\.6 for stride 8 on 37×53, got 10×14"),
        (Shallow, r"feature levels: expected 2 \(len\(channels\)\), got 1"),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_broken_backbones_fail(component, message):
    with pytest.raises(AssertionError, match=message):
        check_component(component)
