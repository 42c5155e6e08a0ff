"""The lps refiner and its network: conformance, both region embeddings, trunk shapes, iterations, checkpoints."""

from pathlib import Path

import pytest
import torch

import salplug
from salplug.errors import CheckpointError
from salplug.components import checkpoint_state
from salplug_lps import LPS
from salplug_lps.anchors import iterate
from salplug_lps.model import Trunk
from salplug.components import shipped_checkpoint
from salplug_lps.refiner import SHIPPED_FILE

FAST = {"checkpoint": None, "backbone_weights": None, "size": 64, "channels": 8, "dim": 8}


@pytest.mark.parametrize("region", ["conv", "fc"])
def test_lps_conformance(region):
    salplug.testing.check_component(LPS, {**FAST, "region": region, "iterations": 2})


@pytest.mark.parametrize("region", ["conv", "fc"])
def test_lps_region_embeddings_give_two_anchors_of_dimension_d(region):
    refiner = LPS(**FAST, region=region)
    with torch.no_grad():
        pixel, features = refiner.net.embed(torch.rand(2, 3, 64, 64))
        anchors = refiner.net.region.anchors(features, torch.rand(2, 1, 16, 16))
    assert pixel.shape == (2, 8, 16, 16) and anchors.shape == (2, 2, 8)
    assert features.shape[1] == (8 if region == "conv" else 5 * 8)


@pytest.mark.parametrize("strides", [(2, 4, 8, 16, 32), (1, 2, 4, 8, 16)], ids=["mobilenetv2", "vgg16"])
@pytest.mark.parametrize("stride", [1, 2, 4])
def test_lps_trunk_brings_every_level_to_the_grid(strides, stride):
    channels = [3, 5, 7, 11, 13]
    trunk = Trunk(channels, strides, 4, stride)
    levels = [torch.rand(2, c, 64 // s, 64 // s) for c, s in zip(channels, strides)]
    assert trunk(levels).shape == (2, 20, 64 // stride, 64 // stride)


def test_lps_config_rules():
    assert LPS.make_config({}).backbone is None  # architecture follows the checkpoint
    for bad in ({"size": 100}, {"iterations": 0}, {"backbone": "vgg19"}, {"region": "mlp"}):
        with pytest.raises(salplug.ConfigError):
            LPS.make_config(bad)
    assert LPS.make_config({"backbone": "vgg16"}).backbone == "vgg16"


def test_lps_iterations_run_the_running_mean_on_the_grid():
    refiner = LPS(**FAST, iterations=3)
    image, prior = torch.rand(1, 3, 64, 64), torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        out = refiner.net.refine(image, prior, 3)
        pixel, features = refiner.net.embed(image)
        zs, y = [], torch.nn.functional.interpolate(prior, size=(16, 16), mode="bilinear", antialias=True)

        def step(y):
            zs.append(torch.sigmoid(refiner.net(image, y)))
            return zs[-1]

        expected = iterate(step, y, 3)
        once = LPS(**FAST, iterations=1)(image, prior)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, torch.stack(zs).mean(0), atol=1e-5, rtol=1e-5)
    assert once.shape == prior.shape
    assert not torch.allclose(out, zs[0])


def test_lps_checkpoint_round_trip(tmp_path):
    refiner = LPS(**{**FAST, "size": 96}, region="fc")
    with torch.no_grad():
        for p in refiner.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = refiner.save_weights(tmp_path / "lps.pt", {"data": "synthetic"})
    state = torch.load(path, weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert any(k.startswith("net.backbone.") for k in state) and any(k.startswith("net.region.") for k in state)
    again = LPS(checkpoint=str(path), backbone_weights=None)
    assert again.arch == {**refiner.arch} and again.arch["region"] == "fc" and again.arch["size"] == 96
    assert again.card == {"data": "synthetic"}
    for key, value in checkpoint_state(again).items():
        assert torch.equal(value, state[key]), key
    image, prior = torch.rand(2, 3, 50, 70), torch.rand(2, 1, 50, 70)
    with torch.inference_mode():
        diff = (refiner(image, prior) - again(image, prior)).abs().max()
    assert diff < 0.02, float(diff)  # fp16 storage only
    with pytest.raises(CheckpointError):
        salplug.build("postprocessor", "median").load_weights(path)
    with pytest.raises(CheckpointError, match="dim=8"):
        LPS(checkpoint=str(path), backbone_weights=None, dim=4)  # explicit architecture that does not match


def test_lps_shipped_checkpoint_is_small_documented_and_loads():
    path = shipped_checkpoint("salplug_lps", SHIPPED_FILE)
    payload = torch.load(path, weights_only=True)
    assert path.stat().st_size < 16 * 2**20
    card = payload["card"]
    assert payload["name"] == "lps" and {"command", "data", "training", "loss_curve"} <= card.keys()
    assert card["data"]["root"].endswith("duts-tr") and card["data"]["anchors"] == "mix"
    assert card["training"]["state"] == "finished"
    refiner = LPS(backbone_weights=None)
    assert refiner.arch["dim"] == payload["config"]["dim"]


def test_lps_missing_shipped_checkpoint_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr("salplug_lps.refiner.LPS.shipped", "absent.pt")
    with pytest.raises(CheckpointError, match="salplug train lps"):
        LPS(backbone_weights=None)


@pytest.mark.parametrize(("name", "iterations"), [("lps.yaml", 1), ("lps-t3.yaml", 3), ("lps-t3-last.yaml", 3)])
def test_lps_chain_specs_name_one_lps_step(name, iterations):
    spec = salplug.load_spec(Path(__file__).parents[1] / "salplug_lps" / "chains" / name)
    refiners = [step for step in spec.steps if step.kind == "refiner"]
    assert [step.component for step in refiners] == ["lps"]
    assert LPS.make_config(refiners[0].config).iterations == iterations


@pytest.mark.parametrize(("name", "order"), [("lps-ldps.yaml", ["lps", "ldps"]), ("ldps-lps.yaml", ["ldps", "lps"])])
def test_lps_mixed_chain_specs_put_the_refiners_in_order(name, order):
    spec = salplug.load_spec(Path(__file__).parents[1] / "salplug_lps" / "chains" / name)
    assert [step.component for step in spec.steps if step.kind == "refiner"] == order
