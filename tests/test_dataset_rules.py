"""The shared data rules of trainers: subset, folds, split, and folder datasets that report mismatches."""

from __future__ import annotations

import numpy as np
import pytest

from salplug.data._datasets import DatasetError, FolderDataset, folds, hold_out, read_subset, split, subset
from salplug.data._io import write_png


def test_subset_spreads_evenly_over_sorted_stems_and_is_order_free():
    stems = [f"{i:03d}" for i in range(10)]
    assert subset(reversed(stems), 5) == ["000", "002", "004", "006", "008"]
    assert subset(stems, 3) == ["000", "003", "006"]
    assert subset(stems, None) == stems and subset(stems, 50) == stems
    with pytest.raises(DatasetError, match="at least 1, got 0"):
        subset(stems, 0)


def test_held_out_stems_are_never_trained_on():
    keys = [f"k{i:03d}" for i in range(100)]
    train, held = hold_out(reversed(keys), 10)
    assert held == keys[::10] and not set(held) & set(train) and len(train) == 90 and train == sorted(train)
    assert hold_out(keys, 10, 30)[0] == subset(train, 30)
    assert hold_out(keys, 0) == (keys, [])


def test_two_folds_are_the_even_and_odd_indices_and_folds_partition():
    stems = [f"s{i}" for i in range(11)]
    assert folds(stems, 2) == [sorted(stems)[0::2], sorted(stems)[1::2]]
    three = folds(stems, 3)
    assert sorted(sum(three, [])) == sorted(stems) and all(set(a).isdisjoint(b) for a in three for b in three if a is not b)
    for k in range(3):
        assert split(stems, 3, k, "held") == three[k]
        assert sorted(split(stems, 3, k, "train") + three[k]) == sorted(stems)
    with pytest.raises(DatasetError, match="fold in 0..2, got 3"):
        split(stems, 3, 3, "train")
    with pytest.raises(DatasetError, match="at least 2"):
        folds(stems, 1)


def _write(folder, stem, value=128):
    write_png(folder / f"{stem}.png", np.full((6, 8), value, np.uint8))


def test_folder_dataset_pairs_by_stem_and_reports_what_it_left_out(tmp_path):
    for stem in ("a", "b", "c"):
        _write(tmp_path / "images", stem)
    _write(tmp_path / "masks", "a")
    _write(tmp_path / "masks", "b")
    _write(tmp_path / "priors" / "det", "a")
    data = FolderDataset(tmp_path, masks=True, prior="det")
    assert data.keys == ["a"]
    assert any("c.png" in path and "without a mask" in reason for path, reason in data.problems.items())
    assert any("b.png" in path and "without a prior map" in reason for path, reason in data.problems.items())
    apart = FolderDataset(tmp_path, priors_dir=tmp_path / "masks")
    assert apart.keys == ["a", "b"]
    assert FolderDataset(tmp_path).keys == ["a", "b", "c"]


def test_folder_dataset_names_the_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="expected a folder .*images"):
        FolderDataset(tmp_path)
    _write(tmp_path / "images", "a")
    with pytest.raises(DatasetError, match="expected a mask folder .*masks, got none"):
        FolderDataset(tmp_path, masks=True)


def test_a_subset_file_lists_stems_with_comments_and_blank_lines(tmp_path):
    path = tmp_path / "subset.txt"
    path.write_text("# hard images\nk1\n\n  k2  # thin parts\nk1\n", encoding="utf-8")
    assert read_subset(path) == {"k1", "k2"}
    path.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=f"subset {path}: expected image stems, one per line, got none"):
        read_subset(path)
    with pytest.raises(DatasetError, match="expected a text file of image stems"):
        read_subset(tmp_path / "absent.txt")
