"""PySODMetrics 1.6.2, the community's reference, run the way its users run it: the oracle
that the metric tests and the metrics benchmark compare salplug against."""

from __future__ import annotations

import warnings

import numpy as np
import py_sod_metrics as pysod


def reference(maps: list[np.ndarray], masks: list[np.ndarray]) -> tuple[dict, dict]:
    """PySODMetrics' per-image values and dataset results, keyed like ours."""
    handlers = {
        "iou": pysod.IOUHandler(with_dynamic=True, with_adaptive=True),
        "dice": pysod.DICEHandler(with_dynamic=True, with_adaptive=True),
    }
    overlap = pysod.FmeasureV2(metric_handlers=handlers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Fmeasure's deprecation, S-measure's empty quadrants
        mae, fm, sm, em = pysod.MAE(), pysod.Fmeasure(), pysod.Smeasure(), pysod.Emeasure()
        wfm = pysod.WeightedFmeasure()
        for pred, gt in zip(maps, masks):
            for metric in (mae, fm, sm, em, wfm, overlap):
                metric.step(pred, gt, normalize=True)
        per_image = {
            "mae": mae.maes,
            "adp_f": fm.adaptive_fms,
            "precision": fm.precisions,
            "recall": fm.recalls,
            "fmeasure": fm.changeable_fms,
            "sm": sm.sms,
            "adp_e": em.adaptive_ems,
            "emeasure": em.changeable_ems,
            "wfm": wfm.weighted_fms,
            "adp_iou": handlers["iou"].adaptive_results,
            "adp_dice": handlers["dice"].adaptive_results,
            "iou": handlers["iou"].dynamic_results,
            "dice": handlers["dice"].dynamic_results,
        }
        f, e, v2 = fm.get_results(), em.get_results()["em"], overlap.get_results()
        dataset = {
            "mae": mae.get_results()["mae"],
            "adp_f": f["fm"]["adp"],
            "mean_f": f["fm"]["curve"].mean(),
            "max_f": f["fm"]["curve"].max(),
            "sm": sm.get_results()["sm"],
            "adp_e": e["adp"],
            "mean_e": e["curve"].mean(),
            "max_e": e["curve"].max(),
            "wfm": wfm.get_results()["wfm"],
            "adp_iou": v2["iou"]["adaptive"],
            "adp_dice": v2["dice"]["adaptive"],
            "precision": f["pr"]["p"],
            "recall": f["pr"]["r"],
            "fmeasure": f["fm"]["curve"],
            "emeasure": e["curve"],
            "iou": v2["iou"]["dynamic"],
            "dice": v2["dice"]["dynamic"],
        }
    return {k: np.asarray(v, np.float64) for k, v in per_image.items()}, dataset
