"""Services the core gives plugins: shipped checkpoints, learned components, images as arrays, superpixels."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from salplug.components import (
    SHIPPED,
    ComponentConfig,
    Learned,
    Refiner,
    checkpoint_file,
    seeded,
    shipped_checkpoint,
)
from salplug.errors import CheckpointError
from salplug.ops import superpixels, to_hwc


@pytest.fixture
def package(tmp_path, monkeypatch):
    """An importable package ``shipper`` with one file under ``checkpoints/``."""
    root = tmp_path / "site" / "shipper"
    (root / "checkpoints").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "checkpoints" / "net.pt").write_bytes(b"weights")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "shipper", raising=False)
    return root


def test_shipped_checkpoint_is_the_file_installed_with_the_package(package):
    assert shipped_checkpoint("shipper", "net.pt") == package / "checkpoints" / "net.pt"


def test_a_missing_shipped_checkpoint_names_the_path_and_what_to_do(package):
    with pytest.raises(CheckpointError, match=r"refiner 'x': expected a shipped checkpoint at .*absent\.pt, "
                                              r"got none installed; train one"):
        shipped_checkpoint("shipper", "absent.pt", owner="refiner 'x'", hint="train one")


def test_checkpoint_file_resolves_tags_paths_and_none(package, tmp_path):
    assert checkpoint_file(None, "shipper", "net.pt") is None
    assert checkpoint_file(SHIPPED, "shipper", "net.pt") == package / "checkpoints" / "net.pt"
    assert checkpoint_file("fold0", "shipper", {"fold0": "net.pt"}) == package / "checkpoints" / "net.pt"
    assert checkpoint_file(str(tmp_path / "mine.pt"), "shipper", "net.pt") == tmp_path / "mine.pt"
    with pytest.raises(CheckpointError, match="absent.pt"):
        checkpoint_file("fold1", "shipper", {"fold1": "absent.pt"})


class Tiny(Learned, Refiner):
    """A learned refiner whose width comes from its checkpoint."""

    name = "tiny-learned"
    defaults = {"width": 4}
    shaped = ("width",)
    frozen = ("encoder",)

    class Config(ComponentConfig):
        checkpoint: str | None = None
        width: int | None = None
        seed: int = 0

    def build(self, arch: dict[str, Any]) -> None:
        with seeded(self.config.seed):
            self.encoder = nn.Sequential(nn.Conv2d(3, arch["width"], 1), nn.BatchNorm2d(arch["width"]))
            self.head = nn.Conv2d(arch["width"], 1, 1)

    def forward(self, image, saliency):
        return torch.sigmoid(self.head(self.encoder(image)))


def test_a_learned_component_takes_its_architecture_and_weights_from_the_checkpoint(tmp_path):
    trained = Tiny(width=6, seed=3)
    path = trained.save_weights(tmp_path / "tiny.pt", card={"data": "d"})
    loaded = Tiny(checkpoint=str(path))
    assert loaded.arch == {"width": 6} and loaded.config.width == 6 and loaded.card == {"data": "d"}
    assert loaded.weights_from == path and not loaded.training
    assert torch.equal(loaded.head.weight, trained.head.weight)
    with pytest.raises(CheckpointError, match="width=6, got width=5"):
        Tiny(checkpoint=str(path), width=5)
    untrained = Tiny()
    assert untrained.arch == {"width": 4} and untrained.card == {} and untrained.untrained


def test_a_learned_components_build_is_seeded_and_leaves_the_callers_random_state():
    torch.manual_seed(0)
    first = Tiny(seed=1)
    drawn = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(3), drawn)
    assert torch.equal(Tiny(seed=1).head.weight, first.head.weight)


def test_frozen_parts_of_a_learned_component_stay_in_eval_mode():
    model = Tiny().train()
    assert model.training and model.head.training and not model.encoder.training


def test_to_hwc_is_channel_last_clamped_contiguous_numpy():
    image = torch.linspace(-0.5, 1.5, 2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    array = to_hwc(image)
    assert array.shape == (2, 4, 5, 3) and array.dtype == np.float32 and array.flags["C_CONTIGUOUS"]
    assert np.array_equal(array, image.clamp(0, 1).permute(0, 2, 3, 1).numpy())
    assert to_hwc(image, torch.float64).dtype == np.float64


def test_superpixels_are_consecutive_labels_of_the_image():
    image = np.zeros((40, 60, 3))
    image[:, 30:] = [1.0, 0.2, 0.1]
    labels = superpixels(image, 12, 10.0)
    assert labels.shape == (40, 60)
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    assert not set(np.unique(labels[:, :25])) & set(np.unique(labels[:, 35:]))  # no segment crosses the edge
