"""Working-size resizing: shape, identity at the same size, antialiasing only when shrinking."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from salplug.ops._resize import resize


def test_same_size_is_the_same_tensor_and_ints_mean_squares():
    x = torch.rand(2, 3, 8, 8)
    assert resize(x, 8) is x
    assert resize(x, 4).shape == (2, 3, 4, 4) and resize(x, (5, 7)).shape == (2, 3, 5, 7)


def test_shrinking_averages_a_checkerboard_and_growing_is_plain_bilinear():
    board = ((torch.arange(144) // 12 + torch.arange(144) % 12) % 2).float().view(1, 1, 12, 12)
    small = resize(board, 4)  # plain bilinear would sample single pixels here: a 0/1 board again
    assert torch.allclose(small, torch.full_like(small, 0.5), atol=0.05)
    x = torch.rand(1, 1, 5, 6)
    expected = F.interpolate(x, size=(10, 12), mode="bilinear", align_corners=False)
    assert torch.equal(resize(x, (10, 12)), expected)
