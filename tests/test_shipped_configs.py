"""Every shipped checkpoint names a config file that retrains it, and that file agrees with its model card."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from salplug.components import INPUT_MARK, read_checkpoint
from salplug.host import get_component
from salplug.pipeline import parse_settings

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(ROOT.glob("plugins/*/salplug_*/checkpoints/*.pt"))
DATA_ENV = "$SALPLUG_DATA"


def data_fields(trainer) -> set[str]:
    """The trainer's fields naming its training images: input fields whose default lies under $SALPLUG_DATA."""
    fields = set()
    for name, info in trainer.Config.model_fields.items():
        if isinstance(info.json_schema_extra, dict) and INPUT_MARK in info.json_schema_extra:
            default = info.get_default(call_default_factory=True)
            if DATA_ENV in str(default):
                fields.add(name)
    return fields


def card_facts(card: dict, trainer) -> dict:
    """What the card records about the training settings, as trainer fields: {field: value}."""
    fields = trainer.Config.model_fields
    facts = {k: v for k, v in card["config"].items() if k in fields}
    data = card["data"] if isinstance(card["data"], dict) else {}
    facts |= {k: v for k, v in data.items() if k in fields and k not in data_fields(trainer)}
    if isinstance(data.get("held_out"), int):
        facts["hold_out"] = data["held_out"]
    if "pairs_per_prior_folder" in data:
        facts["priors"] = list(data["pairs_per_prior_folder"])
    if card["training"].get("state", "finished") == "finished":
        facts["epochs"] = card["training"]["epochs_done"]
    return facts


def listed(path: str) -> int:
    """Stems in a list file: its lines that are neither blank nor comments."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#"))


def command_settings(card: dict) -> dict:
    """The ``--set`` options of the card's command, as `salplug train` reads them."""
    words = shlex.split(card["command"])
    return parse_settings([words[i + 1] for i, word in enumerate(words) if word == "--set"], "FIELD=VALUE")


@pytest.fixture(params=SHIPPED, ids=lambda p: p.name)
def shipped(request):
    """(payload, card with the checkpoint's component config under "config")."""
    payload = read_checkpoint(request.param)
    return payload, {**payload["card"], "config": payload["config"]}


def test_the_shipped_checkpoints_are_found():
    assert len(SHIPPED) >= 7, f"expected the plugins' checkpoints under {ROOT / 'plugins'}, found {len(SHIPPED)}"


def test_the_card_command_names_its_config_file_and_only_the_data(shipped):
    payload, card = shipped
    assert (ROOT / card["config_file"]).is_file(), f"{card['config_file']} is missing"
    words = shlex.split(card["command"])
    assert words[:5] == ["salplug", "train", payload["name"], "--config", card["config_file"]]
    sets = command_settings(card)
    assert set(sets) == data_fields(get_component("trainer", payload["name"]))
    assert all(str(value).count(DATA_ENV) == 1 for value in sets.values())


def test_the_config_file_holds_every_setting_that_shapes_the_result(shipped):
    payload, card = shipped
    trainer = get_component("trainer", payload["name"])
    settings = yaml.safe_load((ROOT / card["config_file"]).read_text(encoding="utf-8"))
    machine = trainer.Config.resume_free - {"out"}
    assert set(settings) == set(trainer.Config.model_fields) - machine - data_fields(trainer)
    for field, value in settings.items():
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, str) and "/" in path and not path.startswith(f"{DATA_ENV}/"):
                assert not Path(path).is_absolute() and ".." not in Path(path).parts, f"{field}: {path} leaves the repository"


def test_the_config_file_gives_the_settings_the_card_recorded(shipped):
    payload, card = shipped
    trainer = get_component("trainer", payload["name"])
    config = trainer(config_file=ROOT / card["config_file"], **command_settings(card)).config.model_dump(mode="json")
    facts = card_facts(card, trainer)
    assert {"epochs"} < facts.keys()
    assert {k: config[k] for k in facts} == facts
    if isinstance(card["data"], list):  # A2S: image folders, then "N images"
        assert card["data"][-1] == f"{listed(config['image_list'])} images"
        assert card["training"]["validation_images"] == listed(config["validation_list"])
