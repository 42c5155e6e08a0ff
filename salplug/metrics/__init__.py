"""Scoring maps against masks: the SOD metrics (equal to PySODMetrics), datasets scored, reports."""

from salplug.metrics._evaluation import Scorer, read_mask_uint8, read_uint8
from salplug.metrics._sodmetrics import (
    LEVELS,
    emeasure,
    fmeasure,
    mae,
    overlap_adaptive,
    prepare_uint8,
    smeasure,
    weighted_fmeasure,
)

__all__ = [
    "LEVELS", "Scorer", "emeasure", "fmeasure", "mae", "overlap_adaptive", "prepare_uint8",
    "read_mask_uint8", "read_uint8", "smeasure", "weighted_fmeasure",
]
