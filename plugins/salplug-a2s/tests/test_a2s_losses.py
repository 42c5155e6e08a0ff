"""Loss values on known inputs, SSIM of identical maps, the label-rectifying formula."""

import pytest
import torch

from salplug_a2s.losses import activation_loss, activation_term, detector_loss, iou_loss, rectify, ssim


def test_a2s_activation_term_known_values():
    # p = 0.5 everywhere: nothing decided, the loss is at its maximum 1
    assert float(activation_term(torch.zeros(1, 1, 4, 4), fraction=1)) == pytest.approx(1.0)
    # p -> 1: (0.5)² + 0.1·0.5 = 0.3 gained
    assert float(activation_term(torch.full((1, 1, 4, 4), 50.0), fraction=1)) == pytest.approx(0.7)
    # p = σ(θ) with θ = ln 3: p = 0.75, d = 0.25 -> 0.0625 + 0.025
    theta = torch.full((2, 1, 3, 3), float(torch.log(torch.tensor(3.0))))
    assert float(activation_term(theta, fraction=1)) == pytest.approx(1 - 0.0875, abs=1e-6)
    # symmetric in the sign of θ
    assert float(activation_term(-theta, fraction=1)) == pytest.approx(1 - 0.0875, abs=1e-6)


def test_a2s_activation_term_random_half_of_uniform_map_is_exact():
    theta = torch.full((2, 1, 16, 16), 50.0)
    value = activation_term(theta, fraction=0.5, generator=torch.Generator().manual_seed(0))
    assert float(value) == pytest.approx(0.7)


def test_a2s_activation_loss_weights_fused_and_levels():
    maps = [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 4, 4), torch.full((1, 1, 2, 2), 50.0)]
    value = activation_loss(maps, (1, 0.1, 0.3, 0.5), fraction=1)
    assert float(value) == pytest.approx(1 + 0.1 + 0.3 + 0.5 * 0.7)
    with pytest.raises(ValueError):
        activation_loss(maps[:2])


def test_a2s_ssim_of_identical_maps_is_one():
    x = torch.rand(2, 1, 30, 40, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ssim(x, x), torch.ones_like(x), atol=1e-4, rtol=0)
    assert float(ssim(x, 1 - x).mean()) < 0.5


def test_a2s_detector_loss_small_when_right_large_when_wrong():
    target = torch.zeros(1, 1, 32, 32)
    target[..., 8:24, 8:24] = 1
    right = (target * 2 - 1) * 20
    assert float(iou_loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(detector_loss(right, target)) < 1e-3
    assert float(detector_loss(-right, target)) > 3


def test_a2s_label_rectifying_formula():
    g = torch.tensor([1.0, 0.0, 0.5, 1.0])
    y = torch.tensor([0.0, 1.0, 0.5, 1.0])
    torch.testing.assert_close(rectify(g, y, 0.4), torch.tensor([0.4, 0.6, 0.5, 1.0]))
    torch.testing.assert_close(rectify(g, y, 1.0), g)
    with pytest.raises(ValueError):
        rectify(g, y, 1.5)
