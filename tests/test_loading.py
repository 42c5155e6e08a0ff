"""The one-call loader: folders or paths to a contract batch, mixed sizes handled only by choice."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import salplug
from salplug import LoadError, load_groups, load_images


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for name, (h, w) in {"a": (12, 16), "b": (12, 16), "c": (16, 12)}.items():
        cv2.imwrite(str(root / f"{name}.png"), np.full((h, w, 3), 100, np.uint8))
    return root


def test_one_size_gives_one_contract_batch(photos):
    (photos / "c.png").unlink()
    batch = load_images(photos)
    assert batch.images.shape == (2, 3, 12, 16) and batch.images.dtype == torch.float32
    assert batch.keys == ["a", "b"] and batch.sizes == [(12, 16), (12, 16)]
    salplug.check_image(batch.images)


def test_mixed_sizes_are_an_error_that_names_them(photos):
    with pytest.raises(LoadError, match=r"one size for one batch, got 2 of 16×12 \(e.g. a.png\), 1 of 12×16 \(e.g. c.png\)"):
        load_images(photos)


def test_padding_is_explicit_and_crop_undoes_it(photos):
    batch = load_images([photos / "a.png", photos / "c.png"], mixed="pad")
    assert batch.images.shape == (2, 3, 16, 16)
    assert float(batch.images[0, :, 12:].abs().max()) == 0.0
    maps = torch.rand(2, 1, 16, 16)
    assert [tuple(m.shape) for m in batch.crop(maps)] == [(1, 1, 12, 16), (1, 1, 16, 12)]


def test_groups_give_one_batch_per_size(photos):
    groups = load_groups(photos)
    assert [(g.keys, tuple(g.images.shape)) for g in groups] == [(["a", "b"], (2, 3, 12, 16)), (["c"], (1, 3, 16, 12))]


def test_unreadable_files_are_all_named_in_one_error(photos, tmp_path):
    (photos / "bad.jpg").write_text("not a jpeg")
    with pytest.raises(LoadError, match=r"cannot load 2 of 5 inputs: .*nowhere.png: no such file.*bad.jpg: not a decodable image"):
        load_images([photos, tmp_path / "nowhere.png"], mixed="pad")
