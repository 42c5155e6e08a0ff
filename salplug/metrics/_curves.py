"""Threshold curves of a grid evaluation: one row of panels per dataset, one line per method.

Panels: precision-recall, then F-measure, E-measure, IoU and Dice against the threshold,
each only where some result holds its curve. A curve of 256 values has index i at
threshold 255 − i, as `salplug.metrics` computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from salplug.metrics._outputs import GridResult


@dataclass(frozen=True)
class Panel:
    """One kind of subplot: the curves it needs, and what its axes show."""

    title: str
    needs: tuple[str, ...]
    ylabel: str


PANELS = (
    Panel("precision-recall", ("recall", "precision"), "precision"),
    Panel("F-measure", ("fmeasure",), "F-measure (β² = 0.3)"),
    Panel("E-measure", ("emeasure",), "E-measure"),
    Panel("IoU", ("iou",), "IoU"),
    Panel("Dice", ("dice",), "Dice"),
)

LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
"""Dash patterns per method, so the plot still reads when printed in grey."""


def draw_grid_curves(grid: Sequence[GridResult], *, highlight: str | None = None) -> Figure | None:
    """Every dataset's curves as one figure; None when no result has a curve.

    A method keeps its colour and dash pattern on every panel. `highlight` names one method
    drawn thicker and last, so it sits on top. A result scored on fewer images than its
    dataset holds is named in its row's title with a dagger.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    datasets = list(dict.fromkeys(r.dataset for r in grid))
    methods = list(dict.fromkeys(r.method for r in grid))
    if highlight is not None and highlight not in methods:
        raise ValueError(f"highlight: expected one of the methods {methods}, got {highlight!r}")
    panels = [p for p in PANELS if any(set(p.needs) <= r.curves.keys() for r in grid)]
    if not panels:
        return None
    order = [m for m in methods if m != highlight] + ([highlight] if highlight is not None else [])
    styles = {m: {"color": f"C{i % 10}", "linestyle": LINESTYLES[i % len(LINESTYLES)],
                  "linewidth": 2.6 if m == highlight else 1.2}
              for i, m in enumerate(methods)}
    figure = Figure(figsize=(3.6 * len(panels), 3.2 * len(datasets) + 0.6), layout="constrained")
    axes = figure.subplots(len(datasets), len(panels), squeeze=False)
    for row, dataset in zip(axes, datasets):
        results = {r.method: r for r in grid if r.dataset == dataset}
        partial = [m for m in methods if m in results and results[m].partial]
        for ax, panel in zip(row, panels):
            pr = panel.needs == ("recall", "precision")
            for method in (m for m in order if m in results):
                curves = results[method].curves
                if not set(panel.needs) <= curves.keys():
                    continue
                if pr:
                    ax.plot(curves["recall"], curves["precision"], label=method, **styles[method])
                else:
                    curve = curves[panel.needs[0]]
                    ax.plot([255 - i for i in range(len(curve))], curve, label=method, **styles[method])
            ax.set(title=f"{dataset}: {panel.title}", xlabel="recall" if pr else "threshold", ylabel=panel.ylabel,
                   xlim=(0, 1) if pr else (0, 255), ylim=(0, 1))
            ax.grid(alpha=0.3)
        if partial:
            row[0].set_title(f"{dataset}: {panels[0].title}\n† fewer images: {', '.join(partial)}")
    figure.legend([Line2D([], [], **styles[m]) for m in methods], methods, loc="outside lower center",
                  ncol=min(len(methods), 5))
    return figure


def plot_grid_curves(grid: Sequence[GridResult], path: str | Path, *, highlight: str | None = None,
                     formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """`draw_grid_curves` saved once per format (`path` with each suffix); nothing when there are no curves."""
    figure = draw_grid_curves(grid, highlight=highlight)
    if figure is None:
        return []
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in formats:
        target = path.with_suffix(f".{suffix}")
        figure.savefig(target, dpi=150)
        written.append(target)
    return written
