"""Merging a refiner's map with the prior it refines, pixel by pixel, by confidence.

A refiner that re-scores every pixel can be less sure than the detector it refines where
that detector is right. Keeping, per pixel, whichever map is further from 0.5 (LDPS's rule)
lets a refiner change only what the prior is unsure of; LDPS and LPS both use it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def merge(prior: Tensor, score: Tensor, tolerance: float = 0.0) -> Tensor:
    """Per pixel, keep the more confident of the two maps (confidence ``|x - 0.5|``; ties keep the prior).

    With ``tolerance`` t the score wins where its confidence exceeds the prior's minus t, so a
    prior saturated at exactly 0 or 1 (an 8-bit map) no longer beats every score; t = 0 is LDPS's rule.
    """
    take_score = (score - 0.5).abs() > (prior - 0.5).abs() - tolerance
    return torch.where(take_score, score, prior)
