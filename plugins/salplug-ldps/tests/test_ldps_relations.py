"""Anchor, pair labels, pair loss and confidence matching of LDPS on small synthetic maps (no network)."""

import torch

from salplug_ldps.relations import anchor_weights, foreground_anchor, match_confidence, pair_labels, pair_loss


def two_region_features(h: int = 8, w: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature (1, 0) on the left half and (0, 1) on the right; prior high on the left, low on the right."""
    left = torch.zeros(1, 1, h, w, dtype=torch.bool)
    left[..., : w // 2] = True
    features = torch.cat([left.float(), (~left).float()], dim=1)
    prior = torch.where(left, torch.tensor(0.95), torch.tensor(0.1))
    return features, prior


def test_ldps_anchor_is_prior_weighted_mean_of_confident_pixels():
    features, prior = two_region_features()
    prior[..., 0, 0] = 1.0  # unequal weights inside the anchor set
    prior[..., 0, 7] = 0.85  # below theta_fg: not in the anchor set
    features[..., 0, 0] = torch.tensor([3.0, 0.0])[:, None].squeeze()  # heavier feature at the 1.0 pixel
    weights = anchor_weights(prior, theta_fg=0.9, topk=0.05)
    assert torch.allclose(weights.sum(), torch.tensor(1.0))
    assert (weights[prior < 0.9] == 0).all()
    anchor = foreground_anchor(features, prior, theta_fg=0.9)
    chosen = prior >= 0.9
    p = prior * chosen / (prior * chosen).sum()
    expected = (features * p).sum(dim=(2, 3))
    assert torch.allclose(anchor, expected, atol=1e-5)
    assert anchor[0, 1] == 0  # nothing from the right half


def test_ldps_anchor_batches_independently():
    features, prior = two_region_features()
    other = 1 - prior  # foreground on the right in the second image
    anchor = foreground_anchor(torch.cat([features, features]), torch.cat([prior, other]), theta_fg=0.9)
    assert torch.allclose(anchor[0], torch.tensor([1.0, 0.0]), atol=1e-5)
    assert torch.allclose(anchor[1], torch.tensor([0.0, 1.0]), atol=1e-5)


def test_ldps_anchor_fallback_without_confident_pixels():
    features, prior = two_region_features()
    weak = prior * 0.5  # max 0.475 < theta_fg
    anchor = foreground_anchor(features, weak, theta_fg=0.9, topk=0.25)
    assert torch.isfinite(anchor).all()
    assert torch.allclose(anchor[0], torch.tensor([1.0, 0.0]), atol=1e-4)  # top pixels are the left ones
    zeros = foreground_anchor(features, torch.zeros_like(prior), theta_fg=0.9, topk=0.05)
    assert torch.isfinite(zeros).all() and torch.allclose(zeros.sum(), torch.tensor(1.0), atol=1e-4)


def test_ldps_pair_labels_follow_thresholds():
    prior = torch.tensor([0.0, 0.3, 0.31, 0.5, 0.79, 0.8, 1.0]).view(1, 1, 1, 7)
    labels, valid = pair_labels(prior, theta_afg=0.8, theta_abg=0.3)
    assert labels.view(-1).tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert valid.view(-1).tolist() == [True, True, False, False, False, True, True]


def test_ldps_pair_loss_balanced_and_safe():
    prior = torch.tensor([0.95] * 2 + [0.05] * 6 + [0.5] * 2).view(1, 1, 1, 10)
    labels, valid = pair_labels(prior)
    right = torch.where(labels > 0.5, 8.0, -8.0)
    assert pair_loss(right, labels, valid) < 1e-3
    assert pair_loss(-right, labels, valid) > 7
    # the uncertain pixels never count
    noisy = right.clone()
    noisy[..., 8:] = 100.0
    assert torch.allclose(pair_loss(noisy, labels, valid), pair_loss(right, labels, valid))
    # balanced: flipping all 2 positives costs as much as flipping all 6 negatives
    pos_wrong, neg_wrong = right.clone(), right.clone()
    pos_wrong[..., :2] = -8.0
    neg_wrong[..., 2:8] = 8.0
    assert torch.allclose(pair_loss(pos_wrong, labels, valid), pair_loss(neg_wrong, labels, valid))
    nothing = torch.zeros_like(valid)
    logits = torch.zeros(1, 1, 1, 10, requires_grad=True)
    empty = pair_loss(logits, labels, nothing)
    empty.backward()
    assert float(empty.detach()) == 0.0 and torch.isfinite(logits.grad).all()


def confidence(maps: torch.Tensor) -> torch.Tensor:
    return (maps - 0.5).abs().mean(dim=(1, 2, 3))


def test_ldps_match_confidence_gives_each_image_its_priors_mean_confidence():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 16, 16)  # mean confidence about 0.17
    prior = torch.rand(2, 1, 16, 16)
    prior[0] = (prior[0] > 0.5).float() * 0.7 + 0.15  # a confident detector: 0.35
    prior[1] = 0.4 + 0.2 * prior[1]  # an unsure one: 0.05
    scores = match_confidence(logits, prior)
    assert torch.allclose(confidence(scores), confidence(prior), atol=1e-4), (confidence(scores), confidence(prior))
    assert confidence(scores)[0] > confidence(torch.sigmoid(logits))[0]  # sharpened for the confident prior
    assert confidence(scores)[1] < confidence(torch.sigmoid(logits))[1]  # softened for the unsure one
    assert torch.equal(scores > 0.5, logits > 0)  # a scale, never a flip


def test_ldps_match_confidence_clamps_its_scale():
    logits = torch.tensor([-2.0, -1.0, 1.0, 2.0]).view(1, 1, 2, 2)
    flat = match_confidence(logits, torch.full((1, 1, 2, 2), 0.5))  # target 0: smallest allowed scale
    assert torch.allclose(flat, torch.sigmoid(logits / 16), atol=1e-5)
    hard = match_confidence(logits, torch.tensor([0.0, 1.0, 0.0, 1.0]).view(1, 1, 2, 2))
    assert torch.allclose(hard, torch.sigmoid(logits * 16), atol=1e-5)
