"""Stage 2: superpixels, proposals, dense SIFT matching, Eq. 1-3."""

import numpy as np
import torch
from mijr_synthetic import scene
from salplug_mijr.matching import (
    alternating_topk,
    correspondence,
    dense_sift,
    grid_labels,
    match,
    proposal_similarity,
)
from salplug.ops import superpixels
from salplug_mijr.regions import adjacency, group, regions, segment_stats


def test_grouping_merges_down_to_one_region_with_nested_members():
    image = scene(0)[0]
    labels = superpixels(image, 40, 10)
    area, _, box, lab = segment_stats(labels, image)
    members, boxes = group(area, box, lab, adjacency(labels))
    n = labels.max() + 1
    assert members.shape == (n - 1, n) and members[-1].all()
    assert members.sum(1).min() >= 2
    for k in range(n - 1):  # every merge is the union of two earlier regions, so regions nest
        inside = members[:k][members[:k][:, members[k]].any(1)]
        assert (inside <= members[k]).all()
    ys, xs = np.nonzero(np.isin(labels, np.flatnonzero(members[0])))
    assert boxes[0].tolist() == [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]


def test_proposals_are_v_distinct_regions_and_one_covers_the_object():
    image, _, mask = scene(4)
    reg = regions(image, 60, 10, 12)
    assert reg.members.shape == (12, reg.count) and len(reg.proposal_box) == 12
    assert all(reg.members[v, reg.centre[v]] for v in range(12))
    region_masks = reg.members[:, reg.labels]  # V×H×W
    iou = (region_masks & mask).sum((1, 2)) / (region_masks | mask).sum((1, 2))
    assert iou.max() > 0.6


def test_dense_sift_is_unit_length_on_its_grid_except_flat_patches():
    d = dense_sift(torch.from_numpy(scene(1)[0].mean(2)), 4)
    assert d.shape == (128, 24, 24)
    norm = d.norm(dim=0)
    flat = norm < 1e-6  # a patch without gradients (inside the plain object) has no direction to describe
    assert torch.allclose(norm[~flat], torch.ones(int((~flat).sum())), atol=1e-4) and flat.float().mean() < 0.2


def test_matching_recovers_a_shift():
    gray = scene(2, 112, 112)[0].mean(2)
    shifted = np.roll(gray, (8, 12), axis=(0, 1))
    a, b = dense_sift(torch.from_numpy(gray), 4), dense_sift(torch.from_numpy(shifted), 4)
    best, cost = match(a, b, lam=0.1)
    h, w = a.shape[1:]
    y, x = best // w, best % w
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    inner = (yy.flatten() >= 3) & (yy.flatten() < h - 5) & (xx.flatten() >= 3) & (xx.flatten() < w - 6)
    right = (y - yy.flatten() == 2) & (x - xx.flatten() == 3)  # 8 and 12 px at a step of 4
    assert right[inner].float().mean() > 0.8
    self_best, self_cost = match(a, a, lam=0.1)
    assert (self_best == torch.arange(h * w)).float().mean() > 0.95 and float(self_cost.max()) < 1e-3


def test_correspondence_and_proposal_similarity_of_an_image_with_itself():
    image = scene(5)[0]
    reg = regions(image, 50, 10, 10)
    d = dense_sift(torch.from_numpy(image.mean(2)), 4)
    best, cost = match(d, d)
    cells = grid_labels(reg.labels, 4)
    s = correspondence(cells, cells, best, cost, reg.count, reg.count)
    has_points = np.bincount(cells, minlength=reg.count) > 0
    assert np.allclose(np.diag(s)[has_points], 1.0, atol=0.05)  # Eq. 2's distance is ~0 to itself
    g = proposal_similarity(reg.members, reg.members, s, reg.area, reg.area)
    assert (g.argmax(1) == np.arange(10)).mean() >= 0.8


def test_alternating_topk_ends_in_mutual_best_pairs():
    rng = np.random.default_rng(0)
    g = rng.uniform(0, 0.3, (6, 7))
    for r, c in [(0, 3), (1, 0), (2, 6), (4, 1)]:
        g[r, c] = 0.9
    pairs = alternating_topk(g, 10)
    assert {(0, 3), (1, 0), (2, 6), (4, 1)} <= set(map(tuple, pairs.tolist()))
    assert len(set(pairs[:, 0])) == len(pairs) and len(set(pairs[:, 1])) == len(pairs)
    assert all(g[r, c] == g[r].max() or g[r, c] == g[:, c].max() for r, c in pairs)
    assert len(alternating_topk(np.zeros((3, 3)), 10)) == 0
