"""Evaluation results for people and programs: a terminal table, JSON, CSV and curve plots."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from salplug.metrics._evaluation import MethodScores
from salplug.metrics._paired import PairedDifference

LABELS = {
    "mae": "MAE",
    "adp_f": "adpF",
    "mean_f": "meanF",
    "max_f": "maxF",
    "sm": "S",
    "adp_e": "adpE",
    "mean_e": "meanE",
    "max_e": "maxE",
    "wfm": "wF",
    "adp_iou": "IoU",
    "adp_dice": "Dice",
}


def _columns(results: Sequence[MethodScores]) -> list[str]:
    columns: list[str] = []
    for result in results:
        columns += [c for c in result.scores if c not in columns]
    return columns


def fewer(results: Sequence[MethodScores]) -> set[str]:
    """Names of methods scored on fewer images than the most any method here was scored on."""
    most = max((r.count for r in results), default=0)
    return {r.name for r in results if r.count < most}


def format_table(results: Sequence[MethodScores]) -> str:
    """Methods as rows, scores to four decimals, with the number of images scored.

    A count marked ``*`` is below the others': those scores are not comparable with theirs.
    """
    columns = _columns(results)
    short = fewer(results)
    rows = [["method", "images", *(LABELS.get(c, c) for c in columns)]]
    for r in results:
        count = f"{r.count}*" if r.name in short else str(r.count)
        rows.append([r.name, count, *(f"{r.scores[c]:.4f}" if c in r.scores else "-" for c in columns)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    if short:
        lines.append("* scored on fewer images than the other methods: not comparable")
    return "\n".join(lines)


def format_comparison(a: str, b: str, differences: dict[str, PairedDifference]) -> str:
    """One line per metric: the mean of A − B over the images both scored, and its bootstrap interval."""
    if not differences:
        return f"{a} − {b}: no metric here has per-image scores to compare"
    return "\n".join(
        f"{a} − {b}  {LABELS.get(metric, metric)}: {d.mean:+.4f}, "
        f"{d.level:.0%} interval [{d.low:+.4f}, {d.high:+.4f}] over {d.count} images"
        for metric, d in differences.items()
    )


def write_json(results: Sequence[MethodScores], path: str | Path, command: str | None = None,
               comparison: tuple[str, str, dict[str, PairedDifference]] | None = None) -> Path:
    """Scores, counts, failures, unsaved maps and averaged curves of every method, plus the command that made them.

    With `comparison` (A, B and `compare_methods`' result), its differences go in too.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict = {
        "command": command,
        "methods": [
            {"name": r.name, "images": r.count, "scores": r.scores, "failed": r.failed, "unsaved": r.unsaved,
             "curves": r.curves}
            for r in results
        ],
    }
    if comparison is not None:
        a, b, differences = comparison
        payload["comparison"] = {"a": a, "b": b, "differences": {m: asdict(d) for m, d in differences.items()}}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def write_csv(results: Sequence[MethodScores], path: str | Path) -> Path:
    """One row per method: name, image count, then every score."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = _columns(results)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "images", *columns])
        for r in results:
            writer.writerow([r.name, r.count, *(repr(r.scores[c]) if c in r.scores else "" for c in columns)])
    return path


LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
MARKERS = ("o", "s", "^", "D", "v", "P")
"""Dash patterns and max-F markers per method, so the plot still reads when printed in grey."""


def plot_curves(results: Sequence[MethodScores], path: str | Path) -> Path:
    """PR curves and F-measure against threshold, one line per method, as a PNG.

    Each method's max-F point is marked on both panels and its value is in the legend, with
    the image count when methods were scored on different numbers of images.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, (pr, fm) = plt.subplots(1, 2, figsize=(11, 4.5))
    short = fewer(results)
    plotted = [r for r in results if {"precision", "recall", "fmeasure"} <= r.curves.keys()]
    for i, r in enumerate(plotted):
        style = {"linestyle": LINESTYLES[i % len(LINESTYLES)], "color": f"C{i % 10}"}
        f = r.curves["fmeasure"]
        best = max(range(len(f)), key=f.__getitem__)
        label = f"{r.name} (max F {f[best]:.3f}{f', {r.count} images' if short else ''})"
        marker = {"marker": MARKERS[i % len(MARKERS)], "markersize": 7, "markeredgecolor": "black", "linestyle": "none"}
        pr.plot(r.curves["recall"], r.curves["precision"], label=label, **style)
        pr.plot([r.curves["recall"][best]], [r.curves["precision"][best]], color=style["color"], **marker)
        thresholds = list(range(255, 255 - len(f), -1))
        fm.plot(thresholds, f, label=label, **style)
        fm.plot([thresholds[best]], [f[best]], color=style["color"], **marker)
    pr.set(xlabel="recall", ylabel="precision", title="Precision-recall", xlim=(0, 1), ylim=(0, 1))
    fm.set(xlabel="threshold", ylabel="F-measure (β² = 0.3)", title="F-measure vs threshold", xlim=(0, 255), ylim=(0, 1))
    for axes in (pr, fm):
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
