"""Chains: construction rules, spec round-trips, contract guards, batching and devices."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import salplug
from salplug import Chain, ChainError, ConfigError, ContractError, StepError
from salplug.components import ComponentConfig, PostProcessor, Refiner


class Square(Refiner):
    """Test refiner: squares the map."""

    name = "square"

    def forward(self, image, saliency):
        return saliency**2


class Overflow(Refiner):
    name = "overflow"

    def forward(self, image, saliency):
        return saliency + 1


class WrongShape(PostProcessor):
    name = "wrong-shape"

    def forward(self, image, saliency):
        return saliency[:, :, :-1]


class Exploding(PostProcessor):
    name = "exploding"

    def forward(self, image, saliency):
        raise RuntimeError("boom")


class DeviceRecorder(PostProcessor):
    """Records the device it was called on; declared CPU-only."""

    name = "device-recorder"
    device_bound = "cpu"

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.seen: list[torch.device] = []

    def forward(self, image, saliency):
        self.seen.append(saliency.device)
        return saliency


class Scaled(Refiner):
    name = "scaled"

    class Config(ComponentConfig):
        factor: float = 1.0

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.weight = nn.Parameter(torch.tensor(self.config.factor))

    def forward(self, image, saliency):
        return (saliency * self.weight).clamp(0, 1)


def basic_chain(**options) -> Chain:
    return Chain(
        [
            salplug.build("prior", "center", sigma=0.3),
            ("smooth", salplug.build("postprocessor", "median", size=3)),
            salplug.build("postprocessor", "normalize"),
        ],
        **options,
    )


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(5, 3, 37, 53, generator=torch.Generator().manual_seed(0))


def test_steps_run_in_chain_order_and_keep_size(images):
    chain = basic_chain()
    out = chain(images, return_steps=True)
    assert list(out.steps) == ["center", "smooth", "normalize"]
    assert out.saliency.shape == (5, 1, 37, 53)
    assert torch.equal(out.saliency, out.steps["normalize"])
    expected = chain.named_steps["normalize"](images, chain.named_steps["smooth"](images, out.steps["center"]))
    assert torch.allclose(out.saliency, expected)
    assert out.saliency.amax().item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "steps, message",
    [
        ([], "at least one step"),
        ([Square()], "expected a prior provider as the first step, got a refiner"),
        (lambda: [("a", salplug.build("prior", "center")), ("a", Square())], "'a' is used twice"),
        (
            lambda: [salplug.build("prior", "center"), ("a", salplug.build("prior", "center"))],
            "exactly one prior provider",
        ),
        (
            lambda: [salplug.build("prior", "center"), salplug.build("postprocessor", "normalize"), Square()],
            "refiners must come before post-processors",
        ),
        (lambda: [salplug.build("prior", "center"), ("bad__name", Square())], "may not contain '__'"),
        (lambda: [salplug.build("prior", "center"), ("../up", Square())], "identifiers"),
        (lambda: [salplug.build("prior", "center"), ("/abs", Square())], "identifiers"),
        (lambda: [salplug.build("prior", "center"), ("a.b", Square())], "identifiers"),
        (lambda: [salplug.build("prior", "center"), nn.Identity()], "got Identity"),
    ],
)
def test_construction_rejects_bad_chains(steps, message):
    with pytest.raises(ChainError, match=message):
        Chain(steps() if callable(steps) else steps)


def test_spec_round_trip_yaml_and_json(tmp_path, images):
    chain = basic_chain(micro_batch=2)
    spec = chain.to_spec()
    for name in ("chain.yaml", "chain.json"):
        path = tmp_path / name
        salplug.dump_spec(spec, path)
        reloaded = Chain.from_spec(path)
        assert reloaded.to_spec() == spec
        assert reloaded.micro_batch == 2
        assert torch.equal(reloaded(images), chain(images))
    assert json.loads((tmp_path / "chain.json").read_text())["steps"][1]["name"] == "smooth"


def test_partial_spec_is_completed_once_and_then_stable(tmp_path):
    path = tmp_path / "chain.yaml"
    path.write_text("steps:\n  - {kind: prior, component: center}\n  - {kind: postprocessor, component: median}\n")
    spec = Chain.from_spec(path).to_spec()
    assert spec.steps[1].name == "median"
    assert spec.steps[1].config["size"] == 5
    assert Chain.from_spec(spec).to_spec() == spec


def test_spec_errors_name_step_and_field(tmp_path):
    bad_config = {"steps": [{"kind": "prior", "component": "center"}, {"kind": "postprocessor", "component": "median", "name": "smooth", "config": {"size": 4, "radius": 2}}]}
    with pytest.raises(ConfigError) as err:
        Chain.from_spec(bad_config)
    text = str(err.value)
    assert "step 'smooth'" in text and "'size'" in text and "odd window size" in text and "'radius'" in text

    bad_kind = {"steps": [{"kind": "priors", "component": "center"}]}
    with pytest.raises(ChainError, match=r"step 0 \('center'\), field 'kind'"):
        Chain.from_spec(bad_kind)

    with pytest.raises(salplug.UnknownComponentError, match="step 'medain': unknown postprocessor 'medain'. Did you mean 'median'"):
        Chain.from_spec({"steps": [{"kind": "prior", "component": "center"}, {"kind": "postprocessor", "component": "medain"}]})

    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: [ {kind: prior\n")
    with pytest.raises(ChainError, match="not valid YAML"):
        Chain.from_spec(broken)
    with pytest.raises(ChainError, match="cannot read chain spec"):
        Chain.from_spec(tmp_path / "missing.yaml")
    with pytest.raises(ChainError, match="field 'version'"):
        Chain.from_spec({"version": 2, "steps": [{"kind": "prior", "component": "center"}]})


def test_batch_equals_single_images_and_micro_batches(images):
    whole = basic_chain()(images)
    singles = torch.cat([basic_chain()(images[i : i + 1]) for i in range(len(images))])
    assert torch.allclose(whole, singles, atol=1e-6)
    assert torch.allclose(basic_chain(micro_batch=2)(images), whole, atol=1e-6)


def test_micro_batches_slice_keys_and_given_prior(tmp_path, images):
    keys = [f"img{i}" for i in range(len(images))]
    expected = []
    for i, key in enumerate(keys):
        array = np.full((37, 53), (i + 1) * 40, np.uint8)
        cv2.imwrite(str(tmp_path / f"{key}.png"), array)
        expected.append(torch.full((1, 37, 53), (i + 1) * 40 / 255.0))
    chain = Chain([salplug.build("prior", "given", root=tmp_path)], micro_batch=2)
    assert torch.allclose(chain(images, keys=keys), torch.stack(expected))


def test_prior_argument_skips_the_prior_step(images):
    maps = torch.rand(5, 1, 37, 53)
    chain = Chain([salplug.build("prior", "center"), Square()])
    assert torch.allclose(chain(images, prior=maps), maps**2)


def test_contract_errors_say_expected_and_got(images):
    chain = basic_chain()
    with pytest.raises(ContractError, match=r"B×3×H×W.*add the batch dimension"):
        chain(images[0])
    with pytest.raises(ContractError, match="channels-last"):
        chain(images.permute(0, 2, 3, 1))
    with pytest.raises(ContractError, match="divide by 255"):
        chain((images * 255).to(torch.uint8))
    with pytest.raises(ContractError, match="expected 5 names"):
        chain(images, keys=["a"])
    with pytest.raises(ContractError, match=r"prior: expected shape \(5, 1, 37, 53\)"):
        chain(images, prior=torch.rand(5, 1, 36, 53))


def test_value_checks_are_on_by_default_and_off_only_when_asked(images):
    assert basic_chain(check_values=False)(images * 3).shape == (5, 1, 37, 53)
    with pytest.raises(ContractError, match=r"image: expected values in \[0, 1\], got min [0-9.e-]+ and max 3 \(0-255"):
        basic_chain()(images * 3)
    with pytest.raises(ContractError, match=r"image: expected finite values in \[0, 1\], got NaN"):
        basic_chain()(images.masked_fill(images > 0.99, float("nan")))
    checked = Chain([salplug.build("prior", "center"), Overflow()])
    with pytest.raises(ContractError, match=r"prior: expected values in \[0, 1\], got min -1"):
        checked(images, prior=-torch.ones(5, 1, 37, 53))
    with pytest.raises(ContractError, match=r"output of step 'overflow' \(refiner 'overflow'\): expected values in \[0, 1\], got min 1"):
        checked(images)


class NaNs(Refiner):
    name = "nans"

    def forward(self, image, saliency):
        return saliency.masked_fill(saliency > 0.9, float("nan"))


class Infinite(Refiner):
    name = "infinite"

    def forward(self, image, saliency):
        return saliency / (1 - saliency / saliency.amax())


@pytest.mark.parametrize(("step", "got"), [(NaNs, "got NaN"), (Infinite, "got min [0-9.]+ and max inf")])
def test_non_finite_step_output_is_named(images, step, got):
    with pytest.raises(ContractError, match=rf"output of step '{step.name}' \(refiner '{step.name}'\): expected finite values in \[0, 1\], {got}"):
        Chain([salplug.build("prior", "center"), step()])(images)


def test_unnamed_repeats_get_numbered_names_in_python_and_in_specs(images):
    steps = [{"kind": "prior", "component": "center"},
             {"kind": "postprocessor", "component": "median", "config": {"size": 3}},
             {"kind": "postprocessor", "component": "normalize"},
             {"kind": "postprocessor", "component": "median", "config": {"size": 31}}]
    from_spec = Chain.from_spec({"steps": steps})
    assert list(from_spec.named_steps) == ["center", "median", "normalize", "median-2"]
    assert from_spec.named_steps["median-2"].config.size == 31
    built = Chain([salplug.build("prior", "center"), salplug.build("postprocessor", "median", size=3),
                   salplug.build("postprocessor", "normalize"), salplug.build("postprocessor", "median", size=31)])
    assert list(built.named_steps) == list(from_spec.named_steps)
    assert torch.equal(built(images), from_spec(images))
    named = Chain.from_spec({"steps": [*steps[:3], {**steps[3], "name": "median-2"},
                                       {"kind": "postprocessor", "component": "median"}]})
    assert list(named.named_steps)[-2:] == ["median-2", "median-3"]


def test_spec_step_names_are_identifiers():
    with pytest.raises(ChainError, match=r"step 1 \('\.\./x'\), field '\(step\)'.*identifiers"):
        Chain.from_spec({"steps": [{"kind": "prior", "component": "center"},
                                   {"kind": "postprocessor", "component": "median", "name": "../x"}]})


def test_broken_steps_are_named(images):
    with pytest.raises(ContractError, match=r"output of step 'wrong-shape' \(postprocessor 'wrong-shape'\)"):
        Chain([salplug.build("prior", "center"), WrongShape()])(images)
    with pytest.raises(StepError, match=r"step 'exploding' \(postprocessor 'exploding'\) failed: RuntimeError: boom") as err:
        Chain([salplug.build("prior", "center"), Exploding()])(images)
    assert isinstance(err.value.__cause__, RuntimeError)


def test_set_params_rebuilds_steps_and_validates(images):
    chain = basic_chain()
    chain.set_params(smooth__size=7, center__sigma=0.1)
    assert chain.named_steps["smooth"].config.size == 7
    assert chain.to_spec().steps[0].config["sigma"] == 0.1
    with pytest.raises(ConfigError, match="step 'smooth'.*'size'"):
        chain.set_params(smooth__size=-1)
    with pytest.raises(ChainError, match="step__field"):
        chain.set_params(nosuchstep__size=3)


def test_device_follows_to_and_moves_parameters():
    chain = Chain([salplug.build("prior", "center"), Scaled(factor=0.5)])
    assert chain.device == torch.device("cpu")
    chain.to("meta")
    assert chain.device.type == "meta"
    assert chain.named_steps["scaled"].weight.device.type == "meta"


def test_cpu_bound_step_gets_cpu_tensors_and_output_returns(images):
    recorder = DeviceRecorder()
    chain = Chain([salplug.build("prior", "center"), recorder])
    assert chain(images).device == torch.device("cpu")
    assert recorder.seen == [torch.device("cpu")]


@pytest.mark.gpu
def test_chain_on_gpu_with_cpu_bound_step(images):
    recorder = DeviceRecorder()
    chain = Chain([salplug.build("prior", "center"), Scaled(factor=0.5), recorder]).to("cuda")
    out = chain(images)
    assert out.device.type == "cuda"
    assert recorder.seen == [torch.device("cpu")]
    assert torch.allclose(out.cpu(), Chain([salplug.build("prior", "center"), Scaled(factor=0.5)])(images))
