"""Stage 1: GIST + HOG descriptors and retrieval."""

import numpy as np
import torch
from mijr_synthetic import scene
from salplug_mijr.retrieval import describe, gist, nearest


def test_descriptor_has_gist_and_hog_parts_of_equal_weight():
    d = describe([scene(0)[0], scene(1)[0][:60]])
    assert d.shape == (2, 512 + 1764)
    assert torch.allclose(d[:, :512].norm(dim=1), torch.full((2,), 0.5**0.5), atol=1e-5)
    assert torch.allclose(d[:, 512:].norm(dim=1), torch.full((2,), 0.5**0.5), atol=1e-5)


def test_gist_responds_to_orientation():
    stripes = torch.zeros(2, 128, 128)
    stripes[0, :, ::8] = 1  # vertical lines
    stripes[1, ::8, :] = 1  # horizontal lines
    g = gist(stripes).view(2, 4, 8, 16).mean(-1)  # scale × orientation energies
    assert g[0].argmax(1).ne(g[1].argmax(1)).all()


def test_near_duplicate_is_retrieved_first():
    photos = [scene(i)[0] for i in range(8)]
    rng = np.random.default_rng(1)
    for k in (2, 5):
        copy = np.clip(photos[k] * 0.9 + 0.03 * rng.standard_normal(photos[k].shape), 0, 1)[4:-4, 3:-3]
        ranked = nearest(describe([copy]), describe(photos), 3)[0]
        assert ranked[0] == k


def test_excluded_index_is_never_retrieved():
    d = describe([scene(i)[0] for i in range(5)])
    ranked = nearest(d, d, 4, exclude=list(range(5)))
    assert ranked.shape == (5, 4)
    assert all(i not in ranked[i].tolist() for i in range(5))
