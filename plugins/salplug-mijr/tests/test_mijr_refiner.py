"""The mijr refiner end to end on a tiny synthetic pool: fit, persisted index, errors, trainer."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mijr_synthetic import pool, scene
from salplug_mijr import MIJR, MIJRTrainer, validation
from salplug_mijr.pool import StoredRecords
from salplug_mijr.pseudo import IGNORED

from salplug.data import DatasetError, held_fold
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
    assert isinstance(refiner.pool.records, StoredRecords)  # decoded on access, not all at load


def test_a_loaded_pool_saves_back_unchanged(fitted, tmp_path):
    loaded = MIJR(index=str(fitted), backbone_weights=None)
    again = MIJR(index=str(loaded.save_index(tmp_path / "again.pt")), backbone_weights=None)
    assert len(again.pool.records) == len(loaded.pool.records) == 8
    for a, b in zip(loaded.pool.records, again.pool.records):
        assert a.key == b.key and torch.equal(a.features, b.features) and np.array_equal(a.regions.labels, b.regions.labels)


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
    with pytest.raises(CheckpointError, match="backbone_weights=None, got backbone_weights='imagenet'"):
        MIJR(index=str(fitted), backbone_weights="imagenet")  # targets must share the pool's feature space
    assert MIJR(index=str(fitted)).config.backbone_weights is None  # unset: the pool's
    bad = tmp_path / "bad.pt"
    torch.save({"format": "other"}, bad)
    with pytest.raises(CheckpointError, match="salplug-mijr-pool/1"):
        MIJR(index=str(bad))
    with pytest.raises(ValueError, match="at least 2"):
        MIJR(**TINY).fit(pool(4, 1))


def synthetic_dataset(root: Path, count: int) -> tuple[Path, Path]:
    """A dataset folder (images/, masks/) and a folder of base maps for the trainer."""
    for folder in ("data/images", "data/masks", "maps"):
        (root / folder).mkdir(parents=True)
    for i in range(count):
        image, base, mask = scene(i)
        cv2.imwrite(str(root / "data/images" / f"{i:03d}.png"), cv2.cvtColor((image * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "maps" / f"{i:03d}.png"), (base * 255).astype(np.uint8))
        cv2.imwrite(str(root / "data/masks" / f"{i:03d}.png"), mask.astype(np.uint8) * 255)
    return root / "data", root / "maps"


def test_trainer_fits_a_pool_from_folders_and_resumes_from_its_parts(tmp_path, monkeypatch):
    data, maps = synthetic_dataset(tmp_path, 7)
    out = tmp_path / "run" / "pool.pt"
    options = dict(data=str(data), maps=str(maps), out=str(out), workers=0, pool_size=6, filter_images=4,
                   projection_images=2, backbone_weights=None, size=64, segments=40, proposals=12, neighbours=2)
    monkeypatch.setattr("salplug_mijr.train.CHUNK", 2)
    assert MIJRTrainer(**options).run() == out
    first = MIJR(index=str(out), backbone_weights=None)
    card = first.pool.card
    assert card["pool"] == card["labelled"] == 6 and card["data"]["filter_images"] == 4
    assert card["data"]["first"] == ["000", "001", "002"]  # 6 of 7 stems, evenly spaced
    assert [r.key for r in first.pool.records] == ["000", "001", "002", "003", "004", "005"]
    assert all(r.truth is not None for r in first.pool.records)

    parts = tmp_path / "run" / "pool.parts"
    (parts / "records-0002.pt").unlink()
    out.unlink()
    assert MIJRTrainer(**options, resume=True).run() == out
    again = MIJR(index=str(out), backbone_weights=None)
    assert again.pool.card["filter_pairs"] == card["filter_pairs"]
    for a, b in zip(first.pool.records, again.pool.records):
        assert torch.equal(a.features, b.features)

    with pytest.raises(DatasetError, match="follow another"):
        MIJRTrainer(**{**options, "segments": 30}, resume=True).run()


def test_trainer_pool_fold_takes_the_images_a_fold_model_never_trained_on(tmp_path, monkeypatch):
    data, maps = synthetic_dataset(tmp_path, 7)
    (maps / "000.png").unlink()  # a missing map must not shift the folds, which are cut over every masked image
    out = tmp_path / "run" / "pool.pt"
    options = dict(data=str(data), maps=str(maps), out=str(out), workers=0, pool_size=None, pool_fold=1, filter_images=2,
                   projection_images=2, backbone_weights=None, size=64, segments=40, proposals=12, neighbours=1)
    built = []
    monkeypatch.setattr("salplug_mijr.train.MIJR", lambda **kw: built.append(kw) or MIJR(**kw))
    MIJRTrainer(**options).run()
    assert len(built) == 1  # workers=0: the trainer's own refiner analyses the pool, its encoder loaded once
    pool = MIJR(index=str(out), backbone_weights=None).pool
    assert [r.key for r in pool.records] == ["001", "003", "005"]  # salplug.data._datasets.split(stems, 2, 1, "held")
    assert "of fold 1 of 2" in pool.card["split_rule"]


def test_validation_links_the_fold_images_the_pool_left_out(tmp_path):
    data, maps = synthetic_dataset(tmp_path, 13)
    out = tmp_path / "run" / "pool.pt"
    MIJRTrainer(data=str(data), maps=str(maps), out=str(out), workers=0, pool_size=4, pool_fold=1, filter_images=4,
                projection_images=2, backbone_weights=None, size=64, segments=40, proposals=12, neighbours=2).run()
    pooled = {r.key for r in MIJR(index=str(out), backbone_weights=None).pool.records}
    view = tmp_path / "val"
    validation.COMMAND.main(["--data", str(data), "--maps", str(maps), "--pool-size", "4", "--pool-fold", "1",
                     "--priors", f"base={maps}", "-o", str(view)])
    held = {p.stem for p in (view / "images").iterdir()}
    fold = held_fold(data, 2, 1)
    assert len(pooled) == 4 and held and not pooled & held and pooled | held == fold
    assert {p.stem for p in (view / "priors" / "base").iterdir()} == held == {p.stem for p in (view / "masks").iterdir()}


def test_pool_labels_masks_takes_the_retrieved_instances_true_labels():
    pseudo = MIJR(**TINY).fit(pool(6, 6))
    image, base, _ = scene(30)
    target = pseudo.analyse_targets([image], [base])[0]
    for record in pseudo.pool.records:
        record.pgt = np.full_like(record.pgt, IGNORED)  # no pseudo label anywhere in the pool
    truth = MIJR(**TINY, pool_labels="masks")
    truth.pool = pseudo.pool
    assert sum(len(x) for x, _, _ in pseudo.retrieved_instances(target)) == 0
    from_masks = truth.retrieved_instances(target)
    assert sum(len(x) for x, _, _ in from_masks) > 0 and 0 < float(torch.cat([y for _, y, _ in from_masks]).mean()) < 1
    truth.pool = MIJR(**TINY).fit(pool(6, 2)).pool
    with pytest.raises(ValueError, match="has no mask"):
        for record in truth.pool.records:
            truth.retrieved_instances(record)


def test_fit_on_retrieved_learns_from_the_pool_alone_and_keeps_the_base_map_without_it(fitted):
    image, base = target(22)
    both = MIJR(index=str(fitted), backbone_weights=None)
    alone = MIJR(index=str(fitted), backbone_weights=None, fit_on="retrieved")
    out = alone(image, base)
    assert out.shape == base.shape and 0 <= out.min() and out.max() <= 1
    assert not torch.equal(out, both(image, base))
    alone.retrieved_instances = lambda record: []  # nothing kept from the pool: nothing to learn from
    assert torch.equal(alone(image, base), base)
