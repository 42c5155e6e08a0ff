"""Scoring maps against masks: the SOD metrics (equal to PySODMetrics), datasets scored, reports."""

from salplug.metrics._boundary import MBA, RelaxedBoundaryF, mean_boundary_accuracy, relaxed_boundary_f
from salplug.metrics._evaluation import MethodScores, Scorer, read_mask_uint8, read_uint8
from salplug.metrics._curves import draw_grid_curves, plot_grid_curves
from salplug.metrics._outputs import (
    GridResult,
    Pairing,
    format_latex,
    format_markdown,
    metric_columns,
    read_results_json,
    write_outputs,
    write_per_image_csv,
    write_results_csv,
    write_results_json,
)
from salplug.metrics._paired import PairedDifference, compare_methods, paired_difference
from salplug.metrics._sodmetrics import (
    LEVELS,
    emeasure,
    fmeasure,
    mae,
    overlap_adaptive,
    overlap_curves,
    prepare_uint8,
    smeasure,
    weighted_fmeasure,
)

__all__ = [
    "LEVELS", "MethodScores", "PairedDifference", "Scorer", "compare_methods", "emeasure", "fmeasure", "mae",
    "overlap_adaptive", "overlap_curves", "paired_difference", "prepare_uint8", "read_mask_uint8", "read_uint8",
    "smeasure", "weighted_fmeasure",
    "GridResult", "Pairing", "draw_grid_curves", "format_latex", "format_markdown", "metric_columns",
    "plot_grid_curves", "read_results_json", "write_outputs", "write_per_image_csv", "write_results_csv",
    "write_results_json",
    "MBA", "RelaxedBoundaryF", "mean_boundary_accuracy", "relaxed_boundary_f",
]
