"""The confidence merge LDPS and LPS apply to their maps and the prior."""

import torch

from salplug.ops._merge import merge


def test_merge_keeps_the_more_confident_map():
    prior = torch.tensor([0.9, 0.5, 0.45, 0.1, 0.6]).view(1, 1, 1, 5)
    score = torch.tensor([0.2, 0.95, 0.05, 0.7, 0.4]).view(1, 1, 1, 5)
    out = merge(prior, score)
    assert out.view(-1).tolist() == torch.tensor([0.9, 0.95, 0.05, 0.1, 0.6]).tolist()


def test_merge_tolerance_lets_a_nearly_as_confident_score_beat_a_saturated_prior():
    prior = torch.tensor([1.0, 0.0, 0.9]).view(1, 1, 1, 3)
    score = torch.tensor([0.999, 0.2, 0.11]).view(1, 1, 1, 3)
    assert merge(prior, score).view(-1).tolist() == prior.view(-1).tolist()  # LDPS's rule keeps the prior
    out = merge(prior, score, tolerance=0.02)
    assert out.view(-1).tolist() == torch.tensor([0.999, 0.0, 0.11]).tolist()  # 0.2 is too unsure to win
