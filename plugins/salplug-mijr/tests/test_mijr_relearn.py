"""Stage 6: α_m, the boosted re-learning and the spatial weighting."""

import math

import numpy as np
import torch
from salplug_mijr.relearn import alpha, relearn, spatial_weighting


def test_alpha_is_half_log_odds_of_being_right():
    assert math.isclose(float(alpha(0.25)), 0.5 * math.log(3), rel_tol=1e-12)
    assert math.isclose(float(alpha(0.1)), 0.5 * math.log(9), rel_tol=1e-12)
    assert float(alpha(0.5)) == 0.0 and float(alpha(0.7)) == 0.0  # no better than chance: no say
    assert math.isfinite(float(alpha(0.0))) and float(alpha(0.0)) > float(alpha(0.01))


def test_relearn_recovers_saliency_of_unlabelled_instances():
    g = torch.Generator().manual_seed(0)
    salient = torch.rand(300, generator=g) > 0.5
    x = torch.randn(300, 8, generator=g, dtype=torch.float64) + 2.0 * salient[:, None]
    confident = torch.arange(300) < 150  # the second half has no pseudo label
    aligned = []
    for m in range(3):
        s = torch.rand(100, generator=g) > 0.5
        aligned.append((torch.randn(100, 8, generator=g, dtype=torch.float64) + 2.0 * s[:, None], s.double(),
                        torch.ones(100, dtype=torch.float64)))
    score, a = relearn(x, confident, salient.double(), torch.ones(300, dtype=torch.float64), aligned)
    assert a.shape == (4,) and (a > 0).all()  # M = 3 classifiers and the joint one, all better than chance
    assert ((score[150:] > 0.5) == salient[150:]).double().mean() > 0.9


def _instances(n, salient, g):
    return torch.randn(n, 8, generator=g, dtype=torch.float64) + 2.0 * salient[:, None]


def test_relearn_on_retrieved_alone_fits_them_and_lets_the_target_weigh_them():
    g = torch.Generator().manual_seed(1)
    salient = torch.rand(300, generator=g) > 0.5
    x = _instances(300, salient, g)
    confident = torch.arange(300) < 150
    s = torch.rand(100, generator=g) > 0.5
    aligned = [(_instances(100, s, g), s.double(), torch.ones(100, dtype=torch.float64)),  # labels agree with the target
               (_instances(100, s, g), (~s).double(), torch.ones(100, dtype=torch.float64)),  # labels inverted
               (torch.randn(50, 8, generator=g, dtype=torch.float64), torch.ones(50, dtype=torch.float64),
                torch.ones(50, dtype=torch.float64))]  # one class: nothing to learn
    score, a = relearn(x, confident, salient.double(), torch.ones(300, dtype=torch.float64), aligned, with_target=False)
    assert a.shape == (4,)
    assert a[0] > 0 and a[1] == 0 and a[2] == 0  # only the classifier that agrees with the target's labels has a say
    assert ((score[150:] > 0.5) == salient[150:]).double().mean() > 0.9
    _, a_joint = relearn(x, confident, salient.double(), torch.ones(300, dtype=torch.float64), aligned)
    assert (a_joint[:3] > 0).all()  # with the target in every fit, even the inverted image's classifier follows the target


def test_relearn_on_retrieved_alone_returns_nan_when_no_retrieved_set_can_teach():
    g = torch.Generator().manual_seed(2)
    salient = torch.rand(40, generator=g) > 0.5
    x = _instances(40, salient, g)
    one_class = [(torch.randn(20, 8, generator=g, dtype=torch.float64), torch.zeros(20, dtype=torch.float64),
                  torch.ones(20, dtype=torch.float64))]
    args = (x, torch.ones(40, dtype=torch.bool), salient.double(), torch.ones(40, dtype=torch.float64))
    assert torch.isnan(relearn(*args, one_class, with_target=False)[0]).all()
    assert torch.isnan(relearn(*args, [], with_target=False)[0]).all()
    assert torch.isfinite(relearn(*args, one_class)[0]).all()


def test_relearn_without_both_classes_returns_nan():
    x = torch.randn(10, 4, dtype=torch.float64)
    score, _ = relearn(x, torch.ones(10, dtype=torch.bool), torch.ones(10, dtype=torch.float64),
                       torch.ones(10, dtype=torch.float64), [])
    assert torch.isnan(score).all()


def test_spatial_weighting_keeps_a_constant_and_smooths_an_outlier_toward_its_neighbours():
    centroid = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0], [50.0, 50.0]])
    lab = np.zeros((4, 3))
    assert np.allclose(spatial_weighting(np.full(4, 0.7), centroid, lab, 2.0, 10.0), 0.7)
    out = spatial_weighting(np.array([1.0, 0.0, 1.0, 0.0]), centroid, lab, 2.0, 10.0)
    assert 0.3 < out[1] < 1.0 and out[3] < 1e-6
