"""The mijr refiner end to end on a tiny synthetic pool: fit, persisted index, conformance, errors, trainer."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mijr_synthetic import pool, scene
from salplug_mijr import MIJR, MIJRTrainer

import salplug
from salplug.errors import CheckpointError

TINY = {"backbone_weights": None, "size": 64, "segments": 40, "proposals": 12, "neighbours": 3, "filter_epochs": 50}


@pytest.fixture(scope="module")
def fitted_refiner() -> MIJR:
    return MIJR(**TINY).fit(pool(8, 5))


@pytest.fixture(scope="module")
def fitted(fitted_refiner, tmp_path_factory) -> Path:
    return fitted_refiner.save_index(tmp_path_factory.mktemp("mijr") / "pool.pt")


def target(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    image, base, _ = scene(seed, 80, 72)
    return torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(base)[None, None]


def test_fit_records_the_pool_and_the_filter(fitted):
    refiner = MIJR(index=str(fitted), backbone_weights=None)
    card = refiner.pool.card
    assert card["pool"] == 8 and card["labelled"] == 5 and card["filter_pairs"] > 0
    assert 0 < card["filter_positive_share"] < 1
    assert refiner.config.size == 64 and refiner.config.segments == 40  # analysis fields follow the pool
    assert refiner.pool.records[0].features.shape[1] == 128


def test_mijr_conformance(fitted):
    salplug.testing.check_component(MIJR, {"index": str(fitted), "backbone_weights": None}, shape=(2, 70, 90))


def test_saved_index_gives_the_same_maps_up_to_its_fp16_features(fitted_refiner, fitted):
    image, base = target(20)
    first = fitted_refiner
    again = MIJR(index=str(fitted), backbone_weights=None)
    out = again(image, base)
    assert out.shape == base.shape and 0 <= out.min() and out.max() <= 1
    assert torch.equal(MIJR(index=str(fitted), backbone_weights=None)(image, base), out)  # a reload is exact
    assert float((first(image, base) - out).abs().mean()) < 0.005  # fp16 storage moves the fitted maps only slightly


def test_refined_map_stays_near_a_good_base_map_on_the_object(fitted):
    image, base = target(21)
    _, _, mask = scene(21, 80, 72)
    out = MIJR(index=str(fitted), backbone_weights=None, blend=1.0)(image, base)[0, 0].numpy()
    assert out[mask].mean() > out[~mask].mean() + 0.3


def test_errors_name_what_is_missing(fitted, tmp_path):
    with pytest.raises(CheckpointError, match="fitted pool"):
        MIJR(backbone_weights=None)(*target(1))
    with pytest.raises(CheckpointError, match="segments=40, got segments=30"):
        MIJR(index=str(fitted), backbone_weights=None, segments=30)
    bad = tmp_path / "bad.pt"
    torch.save({"format": "other"}, bad)
    with pytest.raises(CheckpointError, match="salplug-mijr-pool/1"):
        MIJR(index=str(bad))
    with pytest.raises(ValueError, match="at least 2"):
        MIJR(**TINY).fit(pool(4, 1))


def test_trainer_fits_a_pool_from_folders(tmp_path):
    for folder in ("images", "maps", "masks", "extra", "extra-maps"):
        (tmp_path / folder).mkdir()
    for i in range(8):
        image, base, mask = scene(i)
        labelled = i < 5
        stem = f"{i:03d}"
        cv2.imwrite(str(tmp_path / ("images" if labelled else "extra") / f"{stem}.png"),
                    cv2.cvtColor((image * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(tmp_path / ("maps" if labelled else "extra-maps") / f"{stem}.png"), (base * 255).astype(np.uint8))
        if labelled:
            cv2.imwrite(str(tmp_path / "masks" / f"{stem}.png"), mask.astype(np.uint8) * 255)
    out = tmp_path / "pool.pt"
    trainer = MIJRTrainer(images=str(tmp_path / "images"), maps=str(tmp_path / "maps"), masks=str(tmp_path / "masks"),
                          split="all", extra_images=str(tmp_path / "extra"), extra_maps=str(tmp_path / "extra-maps"),
                          out=str(out), backbone_weights=None, size=64, segments=40, proposals=12, neighbours=2)
    assert trainer.run() == out
    refiner = MIJR(index=str(out), backbone_weights=None)
    assert refiner.pool.card["pool"] == 8 and refiner.pool.card["labelled"] == 5
    assert refiner.pool.card["data"]["split"] == "all"
    with pytest.raises(ValueError, match="extra_maps"):
        MIJRTrainer(extra_images=str(tmp_path / "extra"), extra_maps=None, out=str(out)).run()
