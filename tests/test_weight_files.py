"""Weights files behind a run: an unusable file in the weights folder is an error naming it, and the run
manifest records the sha256 of every weights file the chain read."""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest
import torch

from salplug import Chain
from salplug.components._weight_tags import ENV_DIR, resolve
from salplug.errors import CheckpointError
from salplug.pipeline._manifest import MANIFEST
from salplug.pipeline._runner import run_chain_on_files
from shared_data import TESTS_DATA

ARCH = "mobilenetv2_100"
BASELINE = {"steps": [{"kind": "prior", "component": "baseline"}]}


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _weights_folder(tmp_path, monkeypatch, state) -> object:
    folder = tmp_path / "weights"
    folder.mkdir()
    path = folder / f"{ARCH}.imagenet.pth"
    torch.save(state, path)
    monkeypatch.setenv(ENV_DIR, str(folder))
    return path


def test_a_file_of_other_shapes_in_the_weights_folder_is_an_error_naming_it(tmp_path, monkeypatch):
    state = dict(resolve(ARCH, "imagenet").state)
    first = next(iter(state))
    state = {f"renamed.{k}": v for k, v in state.items()}
    state[f"renamed.{first}"] = torch.zeros(3, 3)
    path = _weights_folder(tmp_path, monkeypatch, state)
    with pytest.raises(CheckpointError) as caught:
        resolve(ARCH, "imagenet")
    assert str(path) in str(caught.value) and "expected shape" in str(caught.value)


def test_a_file_torch_cannot_read_in_the_weights_folder_is_an_error_naming_it(tmp_path, monkeypatch):
    path = _weights_folder(tmp_path, monkeypatch, {})
    path.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError) as caught:
        resolve(ARCH, "imagenet")
    assert str(path) in str(caught.value)


def test_the_manifest_records_the_hash_of_every_weights_file_the_chain_read(tmp_path, monkeypatch):
    state = dict(resolve(ARCH, "imagenet").state)
    encoder = _weights_folder(tmp_path, monkeypatch, state)
    chain = Chain.from_spec(BASELINE)
    checkpoint = chain.named_steps["baseline"].weights_from
    run_chain_on_files(chain, [TESTS_DATA / "images" / "rocket.png"], tmp_path / "maps", progress=False)
    recorded = json.loads((tmp_path / "maps" / MANIFEST).read_text())["weights"]
    assert recorded == {str(encoder.resolve()): _digest(encoder), str(checkpoint.resolve()): _digest(checkpoint)}


def test_a_rerun_with_other_encoder_weights_warns_naming_them(tmp_path, monkeypatch):
    state = dict(resolve(ARCH, "imagenet").state)
    run_chain_on_files(Chain.from_spec(BASELINE), [TESTS_DATA / "images" / "rocket.png"], tmp_path / "maps",
                       progress=False)
    key = next(iter(state))
    state[key] = state[key] * 2
    encoder = _weights_folder(tmp_path, monkeypatch, state)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_chain_on_files(Chain.from_spec(BASELINE), [TESTS_DATA / "images" / "rocket.png"], tmp_path / "maps",
                           progress=False)
    assert any("other weights files" in str(w.message) and _digest(encoder) in str(w.message) for w in caught)
