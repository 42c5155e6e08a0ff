"""The pure anchor functions on synthetic features and maps."""

import pytest
import torch

from salplug_lps.anchors import (
    class_probabilities,
    flip_labels,
    foreground_logit,
    iterate,
    running_mean,
    soft_anchors,
    soft_average,
)


def disc(height: int = 32, width: int = 40) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((ys - height / 2) ** 2 + (xs - width / 2) ** 2 < (height / 4) ** 2)[None, None]


def test_lps_soft_anchors_are_weighted_means():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 5, 6, 7, generator=g)
    weights = torch.rand(2, 1, 6, 7, generator=g)
    anchors = soft_anchors(features, weights)
    assert anchors.shape == (2, 2, 5)
    for b in range(2):
        w = weights[b, 0]
        fg = (features[b] * w).sum((1, 2)) / w.sum()
        bg = (features[b] * (1 - w)).sum((1, 2)) / (1 - w).sum()
        torch.testing.assert_close(anchors[b, 0], fg, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(anchors[b, 1], bg, atol=1e-4, rtol=1e-4)


def test_lps_hard_weights_average_exactly_the_region():
    features = torch.zeros(1, 3, 4, 4)
    features[:, :, :2] = torch.tensor([1.0, 2.0, 3.0])[:, None, None]
    weights = torch.zeros(1, 1, 4, 4)
    weights[:, :, :2] = 1
    anchors = soft_anchors(features, weights)
    torch.testing.assert_close(anchors[0, 0], torch.tensor([1.0, 2.0, 3.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(anchors[0, 1], torch.zeros(3), atol=1e-5, rtol=0)
    empty = soft_average(features, torch.zeros(1, 1, 4, 4))
    torch.testing.assert_close(empty[0, 0], features.mean((0, 2, 3)), atol=1e-5, rtol=0)


def test_lps_disc_with_distinct_features_is_found_from_a_rough_prior():
    g = torch.Generator().manual_seed(1)
    mask = disc()
    # two clusters a few units apart (a trained embedding's scale: the softmax is over raw distances)
    inside, outside = torch.tensor([4.0, -4.0, 2.0, 0.0]), torch.tensor([-2.0, 4.0, 0.0, 2.0])
    features = torch.where(mask, inside[:, None, None], outside[:, None, None]) + torch.randn(1, 4, 32, 40, generator=g)
    # rough prior: the disc only partly covered and unsure, some false response outside
    prior = torch.where(mask, 0.6, 0.25) + 0.15 * torch.rand(1, 1, 32, 40, generator=g)
    p = class_probabilities(features, soft_anchors(features, prior))[:, 0:1]
    assert p[mask].mean() > 0.8 and p[~mask].mean() < 0.25
    assert (p - mask.float()).abs().mean() < (prior - mask.float()).abs().mean() - 0.1
    assert ((p > 0.5) == mask).float().mean() > 0.97
    flat = class_probabilities(features, soft_anchors(features, torch.full_like(prior, 0.4)))
    torch.testing.assert_close(flat, torch.full_like(flat, 0.5), atol=1e-3, rtol=0)  # no contrast in the prior, no decision


def test_lps_distance_softmax_sums_to_one_and_matches_the_logit():
    g = torch.Generator().manual_seed(2)
    features = torch.randn(3, 8, 9, 11, generator=g)
    anchors = torch.randn(3, 2, 8, generator=g)
    p = class_probabilities(features, anchors)
    assert p.shape == (3, 2, 9, 11)
    torch.testing.assert_close(p.sum(1), torch.ones(3, 9, 11))
    torch.testing.assert_close(torch.sigmoid(foreground_logit(features, anchors)), p[:, 0:1], atol=1e-5, rtol=1e-5)
    d = torch.linalg.vector_norm(features[:, None] - anchors[..., None, None], dim=2)
    torch.testing.assert_close(p, torch.softmax(-d, 1), atol=1e-4, rtol=1e-4)


def test_lps_distance_gradient_is_finite_on_an_anchor():
    features = torch.ones(1, 4, 2, 2, requires_grad=True)
    anchors = torch.ones(1, 2, 4)
    foreground_logit(features, anchors).sum().backward()
    assert torch.isfinite(features.grad).all()


def test_lps_label_flips_happen_at_the_rate_and_follow_the_seed():
    mask = disc(200, 200)
    flipped = flip_labels(mask, 0.05, torch.Generator().manual_seed(3))
    rate = float((flipped != mask).float().mean())
    assert 0.045 < rate < 0.055, rate
    assert torch.equal(flipped, flip_labels(mask, 0.05, torch.Generator().manual_seed(3)))
    assert torch.equal(flip_labels(mask, 0.0, torch.Generator().manual_seed(3)), mask)
    assert not torch.equal(flipped, flip_labels(mask, 0.05, torch.Generator().manual_seed(4)))


def test_lps_running_mean_formula():
    y, z = torch.full((1, 1, 2, 2), 0.2), torch.full((1, 1, 2, 2), 0.8)
    torch.testing.assert_close(running_mean(y, z, 0), z)
    torch.testing.assert_close(running_mean(y, z, 2), 2 / 3 * y + 1 / 3 * z)


def test_lps_iterate_t1_is_z0_and_t3_is_the_mean_of_z():
    prior = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(5))
    seen = []

    def z_of(y):
        return (y * 0.5 + 0.3) ** 2  # any map-to-map function

    def step(y):
        seen.append(y.clone())
        return z_of(y)

    torch.testing.assert_close(iterate(step, prior, 1), z_of(prior))
    seen.clear()
    three = iterate(step, prior, 3)
    zs = [z_of(y) for y in seen]
    assert len(zs) == 3
    torch.testing.assert_close(three, torch.stack(zs).mean(0))
    torch.testing.assert_close(seen[0], prior)
    torch.testing.assert_close(seen[2], (zs[0] + zs[1]) / 2)
    with pytest.raises(ValueError, match="iterations"):
        iterate(step, prior, 0)


def test_lps_iterate_without_averaging_returns_the_last_round():
    prior = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(2))

    def step(y):
        return (y * 0.5 + 0.3) ** 2

    expected = step(step(step(prior)))
    torch.testing.assert_close(iterate(step, prior, 3, average=False), expected)
    assert not torch.allclose(iterate(step, prior, 3, average=True), expected)
