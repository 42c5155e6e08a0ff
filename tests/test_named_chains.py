"""Named chains: plugins register the specs they ship, users build and run them by name."""

from __future__ import annotations

import json
import types

import cv2
import numpy as np
import pytest

import salplug
from salplug.cli import main
from salplug.host._chains import UnknownChainError

SPEC = "version: 1\nsteps:\n  - {kind: prior, component: center}\n  - {kind: postprocessor, component: normalize}\n"


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A plugin shipping two chains, one of them the default, registered for the test.

    The installed plugin shipping the default chain is turned off, so this one may claim it.
    """
    monkeypatch.setenv("SALPLUG_DISABLE_PLUGINS", "lps")
    salplug.reload_plugins()
    spec = tmp_path / "centre.yaml"
    spec.write_text(SPEC)

    def salplug_register_chains(register):
        register("centre-test", spec, "centre bias, stretched", scores="toy: MAE 0.5", default=True)
        register("centre-test-2", spec, "the same spec again")

    plugin = types.ModuleType("chains_test_plugin")
    plugin.salplug_register_chains = salplug.hookimpl(salplug_register_chains)
    info = salplug.register_plugin(plugin, name="chains-test")
    yield info
    monkeypatch.delenv("SALPLUG_DISABLE_PLUGINS")
    salplug.reload_plugins()


def test_a_registered_chain_builds_by_name_everywhere_a_spec_path_goes(shipped):
    assert shipped.ok and shipped.chains == ["centre-test", "centre-test-2"]
    by_name = salplug.Chain.named("centre-test")
    assert list(by_name.named_steps) == ["center", "normalize"]
    assert salplug.Chain.from_spec("centre-test").to_spec() == by_name.to_spec()
    assert salplug.load_spec("centre-test") == salplug.load_spec(salplug.get_host().chains.get("centre-test").spec)
    assert salplug.get_host().chains.default.name == "centre-test"


def test_an_unknown_chain_name_suggests_the_close_ones(shipped):
    with pytest.raises(UnknownChainError, match=r"unknown chain 'centre-tst'\. Did you mean 'centre-test'"):
        salplug.Chain.named("centre-tst")
    with pytest.raises(salplug.ChainError, match="cannot read chain spec missing.yaml"):
        salplug.load_spec("missing.yaml")


def test_list_chain_shows_names_summaries_scores_and_the_default(shipped, capsys):
    assert main(["list", "chains"]) == 0
    out = capsys.readouterr().out
    assert "centre-test (default)" in out and "centre bias, stretched" in out and "centre-test: toy: MAE 0.5" in out
    assert main(["list", "chain", "*-2", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["centre-test-2"]
    assert main(["list", "chain", "nothing*"]) == 1


def test_run_takes_a_chain_name_and_without_one_runs_the_default(shipped, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), np.full((24, 32, 3), 128, np.uint8))
    assert main(["run", "--chain", "centre-test-2", str(photos), "-o", str(tmp_path / "named"), "--no-progress"]) == 0
    assert main(["run", str(photos), "-o", str(tmp_path / "default"), "--no-progress"]) == 0
    for out in ("named", "default"):
        assert cv2.imread(str(tmp_path / out / "a.png"), cv2.IMREAD_UNCHANGED).shape == (24, 32)
    manifest = json.loads((tmp_path / "default" / "salplug-run.json").read_text())
    assert [step["component"] for step in manifest["chain"]["steps"]] == ["center", "normalize"]


def test_without_a_default_chain_run_says_how_to_name_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SALPLUG_DISABLE_PLUGINS", "lps")
    salplug.reload_plugins()
    try:
        assert main(["run", str(tmp_path), "-o", str(tmp_path / "maps")]) == 2
        assert "no installed plugin ships a default chain" in capsys.readouterr().err
    finally:
        monkeypatch.delenv("SALPLUG_DISABLE_PLUGINS")
        salplug.reload_plugins()


def test_the_installed_default_chain_is_the_baseline_refined_by_lps():
    default = salplug.reload_plugins().chains.default
    assert default.name == "baseline-lps"
    assert [s.component for s in salplug.load_spec(default.spec).steps] == ["baseline", "lps"]


def test_a_second_default_or_a_taken_name_is_that_plugins_conflict(shipped, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(SPEC)

    def salplug_register_chains(register):
        register("centre-test", other, "a different file under a taken name")
        register("another", other, "claims the default too", default=True)

    plugin = types.ModuleType("chains_clash_plugin")
    plugin.salplug_register_chains = salplug.hookimpl(salplug_register_chains)
    info = salplug.register_plugin(plugin, name="chains-clash")
    assert not info.ok and info.chains == []
    assert "chain 'centre-test' is registered by both" in info.conflicts[0]
    assert "are both declared the default" in info.conflicts[1]
    assert salplug.get_host().chains.get("centre-test").spec.name == "centre.yaml"


def test_registering_a_missing_file_or_a_bad_name_is_an_error(tmp_path):
    def salplug_register_chains(register):
        register("Bad Name", tmp_path / "x.yaml", "")

    plugin = types.ModuleType("chains_bad_plugin")
    plugin.salplug_register_chains = salplug.hookimpl(salplug_register_chains)
    try:
        info = salplug.register_plugin(plugin, name="chains-bad")
        assert "a chain name must be lower-case" in info.errors[0]
    finally:
        salplug.reload_plugins()


def test_every_installed_chain_loads_and_names_installed_components():
    chains = salplug.reload_plugins().chains
    assert {"baseline", "baseline-lps", "baseline-ldps", "a2s-ldps-densecrf", "lps", "ldps", "mbd-plus"} <= set(chains.names())
    for name in chains.names():
        entry = chains.get(name)
        assert entry.summary, name
        for step in salplug.load_spec(name).steps:
            salplug.get_component(step.kind, step.component)
