"""Feature cache: computes each key once, serves memory and disk hits exactly, never mixes backbones."""

from __future__ import annotations

import pytest
import torch

from salplug.builtins.backbones import TimmBackbone
from salplug.errors import ContractError
from salplug.train._feature_cache import FeatureCache, backbone_digest


def _backbone(**options):
    return TimmBackbone(arch="resnet18", weights=None, out_indices=(1, 3), **options)


def _images(n=3, seed=0):
    return torch.rand(n, 3, 64, 80, generator=torch.Generator().manual_seed(seed))


def test_cached_features_equal_the_backbone_and_are_computed_once():
    torch.manual_seed(0)
    backbone = _backbone()
    cache = FeatureCache(backbone)
    images = _images()
    first = cache(images, ["a", "b", "c"])
    again = cache(images[[2, 0]], ["c", "a"])
    with torch.no_grad():
        direct = backbone(images)
    assert cache.computed == 3
    for got, want in zip(first, direct, strict=True):
        assert torch.equal(got, want)
    for got, want in zip(again, direct, strict=True):
        assert torch.equal(got, want[[2, 0]])


def test_only_new_keys_reach_the_backbone():
    cache = FeatureCache(_backbone())
    images = _images(4)
    cache(images[:2], ["a", "b"])
    cache(images, ["a", "b", "c", "d"])
    assert cache.computed == 4


def test_disk_entries_serve_a_new_cache_of_the_same_backbone(tmp_path):
    torch.manual_seed(0)
    backbone = _backbone()
    images = _images()
    written = FeatureCache(backbone, tmp_path, memory=False)
    expected = written(images, ["x/1", "x/2", "y"])
    reread = FeatureCache(backbone, tmp_path, memory=False)
    got = reread(images, ["x/1", "x/2", "y"])
    assert reread.computed == 0
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)
    files = list(tmp_path.rglob("*.pt"))
    assert len(files) == 3 and all(f.stat().st_size < 200_000 for f in files)


def test_another_config_or_size_is_a_separate_entry(tmp_path):
    torch.manual_seed(0)
    one = _backbone()
    other = TimmBackbone(arch="resnet18", weights=None, out_indices=(2,))
    assert backbone_digest(one) != backbone_digest(other)
    FeatureCache(one, tmp_path)(_images(1), ["k"])
    cache = FeatureCache(other, tmp_path)
    cache(_images(1), ["k"])
    cache(torch.rand(1, 3, 32, 32), ["k"])
    assert cache.computed == 2


def test_trainable_backbone_and_bad_keys_are_refused():
    with pytest.raises(ContractError, match="expected a frozen backbone"):
        FeatureCache(_backbone(frozen=False))
    with pytest.raises(ContractError, match="expected 3 keys for the batch, got 2"):
        FeatureCache(_backbone())(_images(), ["a", "b"])
