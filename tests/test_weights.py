"""Trainable components save and load their own weights, and refuse foreign ones."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from torch import nn

from salplug import CheckpointError
from salplug.components import ComponentConfig, Refiner


class Tiny(Refiner):
    name = "tiny"

    class Config(ComponentConfig):
        channels: int = 4

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.conv = nn.Conv2d(4, 1, 1)

    def forward(self, image, saliency):
        return torch.sigmoid(self.conv(torch.cat([image, saliency], 1)))


class Other(Tiny):
    name = "other"


def test_round_trip_restores_state_and_card(tmp_path):
    trained = Tiny()
    with torch.no_grad():
        trained.conv.weight.fill_(0.25)
    path = trained.save_weights(tmp_path / "sub" / "tiny.pt", card={"data": "sod-dev", "epochs": 3})
    fresh = Tiny()
    card = fresh.load_weights(path)
    assert card == {"data": "sod-dev", "epochs": 3}
    assert torch.equal(fresh.conv.weight, trained.conv.weight)
    assert [p.name for p in path.parent.iterdir()] == ["tiny.pt"]


def test_foreign_or_broken_checkpoints_are_refused(tmp_path):
    path = Tiny().save_weights(tmp_path / "tiny.pt")
    with pytest.raises(CheckpointError, match="expected weights of refiner 'other', got weights of refiner 'tiny'"):
        Other().load_weights(path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not torch")
    with pytest.raises(CheckpointError, match=r"junk.pt is not a torch.save file \(expected the zip archive"):
        Tiny().load_weights(junk)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pt is empty; expected a file written by torch.save"):
        Tiny().load_weights(tmp_path / "empty.pt")
    torch.save({"format": "salplug-checkpoint/1", "object": Tiny}, tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match=r"code.pt holds Python objects beyond tensors .* never unpickles") as err:
        Tiny().load_weights(tmp_path / "code.pt")
    assert "weights_only=False" not in str(err.value)
    torch.save({"weights": 1}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="written by save_weights"):
        Tiny().load_weights(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        Tiny().load_weights(tmp_path / "missing.pt")


def test_an_unreadable_checkpoint_is_reported_as_not_readable_not_as_broken(tmp_path):
    path = Tiny().save_weights(tmp_path / "locked.pt")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user reads files whatever their permissions (root)")
        with pytest.raises(CheckpointError, match=r"locked.pt is not readable: Permission denied$") as err:
            Tiny().load_weights(path)
        assert "torch.save" not in str(err.value)
    finally:
        path.chmod(0o644)


class Partly(Tiny):
    """A refiner whose `frozen` part comes from elsewhere (a weight tag) and whose state is stored in fp16."""

    name = "partly"
    checkpoint_skip = ("frozen.",)
    checkpoint_dtype = torch.float16

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.frozen = nn.Linear(3, 3)


def test_checkpoint_skips_rebuilt_parts_and_stores_the_declared_dtype(tmp_path):
    trained = Partly()
    with torch.no_grad():
        trained.conv.weight.fill_(0.1)
    path = trained.save_weights(tmp_path / "partly.pt")
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert set(stored) == {"conv.weight", "conv.bias"}
    assert all(v.dtype == torch.float16 for v in stored.values())

    fresh = Partly()
    rebuilt = fresh.frozen.weight.clone()
    fresh.load_weights(path)
    assert fresh.conv.weight.dtype == torch.float32
    torch.testing.assert_close(fresh.conv.weight, torch.full_like(fresh.conv.weight, 0.1), atol=1e-4, rtol=0)
    assert torch.equal(fresh.frozen.weight, rebuilt), "a skipped part keeps the value it was built with"
    assert set(fresh.state_dict()) >= {"frozen.weight", "conv.weight"}, "state_dict itself stays complete"


def test_checkpoint_with_missing_keys_names_them(tmp_path):
    path = Tiny().save_weights(tmp_path / "tiny.pt")
    payload = torch.load(path, weights_only=True)
    del payload["state_dict"]["conv.bias"]
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"missing 1 keys, e.g. \['conv.bias'\]"):
        Tiny().load_weights(path)
    Tiny().load_weights(path, strict=False)


def test_checkpoint_architecture_prefers_config_then_file_then_defaults(tmp_path):
    from types import SimpleNamespace

    from salplug.components._weights import checkpoint_architecture

    path = Tiny(channels=8).save_weights(tmp_path / "tiny.pt")
    defaults = {"channels": 4, "size": 256}
    unset = SimpleNamespace(channels=None, size=None)
    assert checkpoint_architecture(unset, defaults, None) == {"channels": 4, "size": 256}
    assert checkpoint_architecture(unset, defaults, path) == {"channels": 8, "size": 256}
    explicit = SimpleNamespace(channels=16, size=320)
    assert checkpoint_architecture(explicit, defaults, path) == {"channels": 16, "size": 320}  # not shaped: config wins
    with pytest.raises(CheckpointError, match=r"refiner 'tiny'.*channels=8, got channels=16"):
        checkpoint_architecture(explicit, defaults, path, shaped=("channels",), owner="refiner 'tiny'")
    assert checkpoint_architecture(SimpleNamespace(channels=8, size=None), defaults, path, shaped=("channels",)) == {
        "channels": 8, "size": 256}


class Wider(Tiny):
    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.conv = torch.nn.Conv2d(1, 3, 3)


def test_wrong_shapes_and_non_finite_weights_are_refused_with_the_tensor_named(tmp_path):
    path = Wider().save_weights(tmp_path / "wide.pt")
    with pytest.raises(CheckpointError, match=r"other shapes than the module .*conv.weight: expected \(1, 4, 1, 1\), got \(3, 1, 3, 3\)"):
        Tiny().load_weights(path)
    broken = Tiny()
    with torch.no_grad():
        broken.conv.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"non-finite weights \(NaN or inf\) in 1 tensors, e.g. \['conv.weight'\]"):
        Tiny().load_weights(broken.save_weights(tmp_path / "nan.pt"))


def test_checkpoints_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = Tiny().save_weights(tmp_path / "shared.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
