"""The eval-mode shortcut of the LDPS network gives the logits of the full-size path."""

import pytest
import torch
import torch.nn.functional as F
from salplug_ldps import LDPS
from salplug_ldps.model import anchor_from_low, upsampling_matrix
from salplug_ldps.relations import anchor_weights, foreground_anchor


def test_upsampling_matrix_is_what_interpolate_applies():
    low = torch.rand(1, 1, 13, 7, dtype=torch.float64)
    up = F.interpolate(low, size=(40, 29), mode="bilinear", align_corners=False)[0, 0]
    assert torch.allclose(upsampling_matrix(13, 40, low) @ low[0, 0] @ upsampling_matrix(7, 29, low).T, up)


def test_anchor_from_low_equals_the_anchor_of_upsampled_features():
    torch.manual_seed(0)
    low = torch.rand(2, 5, 16, 12, dtype=torch.float64)
    prior = torch.rand(2, 1, 64, 48, dtype=torch.float64)
    prior[1] *= 0.5  # no pixel above theta_fg: the top-k fallback
    full = foreground_anchor(F.interpolate(low, size=(64, 48), mode="bilinear", align_corners=False), prior, 0.9, 0.05)
    assert torch.allclose(anchor_from_low(low, anchor_weights(prior, 0.9, 0.05)), full)


@pytest.mark.parametrize("size", [256, 96])
def test_eval_logits_match_the_full_size_path_of_the_shipped_network(size):
    net = LDPS().net.eval()
    torch.manual_seed(1)
    image, prior = torch.rand(2, 3, size, size), torch.rand(2, 1, size, size) ** 2
    with torch.no_grad():
        certain, every = net.features(image)
        fast = net.logits(certain, every, prior, 0.9, 0.05)
        up = [F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False) for x in (certain, every)]
        slow = net.head.discriminator(foreground_anchor(up[0], prior, 0.9, 0.05), up[1])
    assert fast.shape == slow.shape == (2, 1, size, size)
    assert float((fast - slow).abs().max()) < 1e-4 * max(1.0, float(slow.abs().max()))


@pytest.mark.parametrize("training", [False, True])
def test_fuse_reduces_each_level_before_upsampling_as_the_concatenation_would(training):
    head = LDPS().net.head.train(training)
    torch.manual_seed(2)
    stem, x4 = torch.rand(2, 32, 64, 64), torch.rand(2, 24, 32, 32)
    x16, x32 = torch.rand(2, 96, 8, 8), torch.rand(2, 320, 4, 4)
    with torch.no_grad():
        certain, every = head.fuse(stem, x4, x16, x32)
        levels = [F.adaptive_avg_pool2d(stem, (32, 32)), x4]
        levels += [F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False) for x in (x16, x32)]
        fused = head.aspp(torch.cat(levels, dim=1))
        expected = head.certain(fused), head.all(fused)
    for got, want in zip((certain, every), expected):
        assert torch.allclose(got, want, atol=1e-4)
