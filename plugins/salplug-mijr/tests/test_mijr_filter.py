"""Stage 5: Table I labels, region IoU and the pair filter."""

import numpy as np
import pytest
import torch
from salplug_mijr.filter import PairFilter, region_iou, table_one


def test_table_one_labels_pairs_by_the_aligned_side_and_weights_hard_targets():
    iou_target = np.array([0.05, 0.05, 0.05, 0.80, 0.80, 0.80, 0.15, 0.16])
    iou_aligned = np.array([0.95, 0.10, 0.50, 0.95, 0.10, 0.50, 0.91, 0.90])
    label, weight = table_one(iou_target, iou_aligned, hard_weight=2.0)
    assert label.tolist() == [1, 0, 0, 1, 0, 0, 1, 0]
    assert weight.tolist() == [2, 2, 0, 1, 1, 0, 2, 0]  # hard: IoU ≤ 15 %; consistent: IoU > 90 %; between: left out


def test_region_iou_sums_superpixel_pixels_and_calls_empty_regions_consistent():
    members = np.array([[1, 1, 0], [0, 0, 1], [1, 1, 1]], bool)
    inter = np.array([10.0, 0.0, 0.0])
    union = np.array([20.0, 20.0, 0.0])
    assert np.allclose(region_iou(members, inter, union), [0.25, 1.0, 0.25])


def test_filter_learns_a_separable_rule():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g)
    label = (x[:, 2] > 0).float()
    pair_filter = PairFilter(6)
    losses = pair_filter.fit(x, label, torch.ones(400), epochs=200, lr=1e-2)
    assert losses[-1] < losses[0] / 4
    test = torch.randn(200, 6, generator=g)
    assert ((pair_filter(test) >= 0.5).float() == (test[:, 2] > 0).float()).float().mean() > 0.9


def test_filter_refuses_one_class():
    with pytest.raises(ValueError, match="both labels"):
        PairFilter(3).fit(torch.randn(10, 3), torch.ones(10), torch.ones(10))


def test_filter_fit_is_fixed_by_its_seed_and_leaves_the_global_random_state_alone():
    g = torch.Generator().manual_seed(1)
    x, label = torch.randn(100, 4, generator=g), (torch.rand(100, generator=g) > 0.5).float()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first, second = PairFilter(4), PairFilter(4)
    state = torch.random.get_rng_state()
    first.fit(x, label, torch.ones(100), epochs=20, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    second.fit(x, label, torch.ones(100), epochs=20, seed=7)
    assert torch.equal(first(x), second(x)) and not torch.equal(before, state)
