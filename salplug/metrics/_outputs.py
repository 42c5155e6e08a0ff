"""Paper-ready outputs of a grid evaluation (datasets × methods), as SOD papers print them.

Layout follows PySODEvalToolkit: datasets as column groups, methods as rows, metric names
with ↑ (higher is better) or ↓, three decimals, and the top three of each column marked:
best in bold, second underlined, third in italics, in Markdown and LaTeX alike. Ranks are
taken on the values as displayed, so equal numbers share a mark. A result scored on fewer
images than its dataset holds (a *partial* one) is marked with a dagger and a footnote,
takes no rank, and carries a flag in the CSV and JSON files.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from salplug.metrics._curves import plot_grid_curves
from salplug.metrics._evaluation import COLUMNS, MethodScores

LABELS = {
    "sm": "Sm", "mean_e": "Em", "max_e": "maxEm", "adp_e": "adpEm", "wfm": "wFβ", "mae": "MAE",
    "max_f": "maxFβ", "mean_f": "meanFβ", "adp_f": "adpFβ", "adp_iou": "IoU", "adp_dice": "Dice",
}
"""Metric names in Markdown and CSV headers; Em alone is the mean E-measure, as papers write it."""

TEX_LABELS = {
    "sm": r"S_m", "mean_e": r"E_m", "max_e": r"E_m^{\max}", "adp_e": r"E_m^{\mathrm{adp}}", "wfm": r"F_\beta^w",
    "mae": r"\mathrm{MAE}", "max_f": r"F_\beta^{\max}", "mean_f": r"F_\beta^{\mathrm{mean}}",
    "adp_f": r"F_\beta^{\mathrm{adp}}", "adp_iou": r"\mathrm{IoU}", "adp_dice": r"\mathrm{Dice}",
}
"""The same names as LaTeX math."""

LOWER_IS_BETTER = frozenset({"mae"})

PRESETS = {
    "paper": ("sm", "mean_e", "wfm", "mae"),
    "pysodevaltoolkit": ("sm", "wfm", "mae", "max_f", "mean_f", "adp_f", "max_e", "mean_e", "adp_e"),
}
"""Column sets by name; ``all`` (every metric a grid holds) is computed.

``pysodevaltoolkit`` is that toolkit's ``eval.py --metric-names`` default
(``sm wfm mae fmeasure em precision recall msiou``) restricted to what salplug scores, each
curve metric expanded as it reports them: max, average (mean), adaptive.
"""

MACROS = (
    ("bestscore", r"\textbf{#1}"),
    ("secondscore", r"\underline{#1}"),
    ("thirdscore", r"\textit{#1}"),
)
"""LaTeX marks of the top three, defined with \\providecommand: define them first to restyle (e.g. colours)."""


@dataclass(frozen=True)
class Pairing:
    """How a method's maps matched a dataset's masks.

    `missing`: masks without a usable map (not scored); `extra`: maps without a mask
    (ignored); `resized`: maps scored after resizing to their mask. The ``*_names`` fields
    name them (image keys; files for `extra`) where known, for the report that lists each.
    """

    matched: int
    missing: int = 0
    extra: int = 0
    resized: int = 0
    missing_names: tuple[str, ...] = ()
    extra_names: tuple[str, ...] = ()
    resized_names: tuple[str, ...] = ()


@dataclass
class GridResult:
    """One (dataset, method) cell of a grid evaluation.

    `scores`: metric name → dataset score; `curves`: curve name → 256 values (index i is
    threshold 255 − i); `per_image`: image key → metric name → that image's score.
    `images`, `masks` and `maps`: image key → the file of its photo, mask and the method's
    map, where known, for the report page to show them.
    """

    dataset: str
    method: str
    scores: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)
    pairing: Pairing | None = None
    images: dict[str, str] = field(default_factory=dict)
    masks: dict[str, str] = field(default_factory=dict)
    maps: dict[str, str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """Scored on fewer images than the dataset holds: not comparable with complete rows."""
        return self.pairing is not None and self.pairing.missing > 0

    @classmethod
    def from_scores(cls, dataset: str, scores: MethodScores, pairing: Pairing | None = None, *,
                    images: Mapping[str, str | Path] | None = None,
                    masks: Mapping[str, str | Path] | None = None) -> GridResult:
        """The cell of `scores` (one method on `dataset`).

        Without `pairing`, images the method could not score (distinct stems in
        ``scores.failed``) count as missing, so a row with failures is marked partial.
        `images` and `masks` (image key → file, as `SODDataset` holds them) and the map
        files in ``scores.maps`` let the report page show each image.
        """
        if pairing is None:
            pairing = Pairing(matched=scores.count, missing=len({Path(p).stem for p in scores.failed}))
        per_image: dict[str, dict[str, float]] = {}
        for metric, values in scores.per_image.items():
            for key, value in values.items():
                per_image.setdefault(key, {})[metric] = value
        return cls(dataset, scores.name, dict(scores.scores), {k: list(v) for k, v in scores.curves.items()},
                   per_image, pairing, _strings(images), _strings(masks), dict(scores.maps))


def _strings(files: Mapping[str, str | Path] | None) -> dict[str, str]:
    return {key: str(path) for key, path in (files or {}).items()}


def ordered(names) -> list[str]:
    """Metric names in the preferred column order; others follow, sorted."""
    names = set(names)
    return [c for c in COLUMNS if c in names] + sorted(names - set(COLUMNS))


def metric_columns(preset: str = "paper", grid: Sequence[GridResult] = ()) -> list[str]:
    """The metric columns of a named preset: ``paper``, ``pysodevaltoolkit`` or ``all``.

    With `grid`, only metrics some result of it holds; ``all`` is then every one of them,
    and without a grid every standard metric.
    """
    held = ordered(m for r in grid for m in r.scores)
    if preset == "all":
        return held if grid else list(COLUMNS)
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted([*PRESETS, 'all'])}, got {preset!r}")
    return [m for m in PRESETS[preset] if not grid or m in held]


def header(metric: str) -> str:
    """A metric's column header: its name and which way is better."""
    return LABELS.get(metric, metric) + ("↓" if metric in LOWER_IS_BETTER else "↑")


def _axes(grid: Sequence[GridResult]) -> tuple[list[str], list[str], dict[tuple[str, str], GridResult]]:
    """Datasets and methods in order of first appearance, and the cells by (dataset, method)."""
    cells: dict[tuple[str, str], GridResult] = {}
    for r in grid:
        if (r.dataset, r.method) in cells:
            raise ValueError(f"grid: two results for method {r.method!r} on dataset {r.dataset!r}")
        cells[r.dataset, r.method] = r
    return list(dict.fromkeys(r.dataset for r in grid)), list(dict.fromkeys(r.method for r in grid)), cells


def _resolve(columns: str | Sequence[str], grid: Sequence[GridResult]) -> list[str]:
    return metric_columns(columns, grid) if isinstance(columns, str) else list(columns)


def _shown(value: float | None, decimals: int) -> str | None:
    """The value as displayed; None where there is none to show."""
    return None if value is None or not math.isfinite(value) else f"{value:.{decimals}f}"


@dataclass(frozen=True)
class Cell:
    """One displayed number: its text (None: no value), rank 1–3 in its column (0: none), partial flag."""

    text: str | None
    rank: int
    partial: bool


def table_cells(grid: Sequence[GridResult], columns: Sequence[str],
                decimals: int = 3) -> dict[tuple[str, str, str], Cell]:
    """Every displayed number by (dataset, method, metric), ranked among the complete rows.

    Ranks are dense over the distinct displayed values, so methods that print the same
    number share its mark.
    """
    datasets, methods, cells = _axes(grid)
    table = {}
    for dataset in datasets:
        for metric in columns:
            shown = {m: _shown(cells[dataset, m].scores.get(metric), decimals)
                     for m in methods if (dataset, m) in cells}
            ranked = {float(t) for m, t in shown.items() if t is not None and not cells[dataset, m].partial}
            order = sorted(ranked, reverse=metric not in LOWER_IS_BETTER)[:3]
            for method in methods:
                text = shown.get(method)
                partial = (dataset, method) in cells and cells[dataset, method].partial
                rank = order.index(float(text)) + 1 if text is not None and not partial and float(text) in order else 0
                table[dataset, method, metric] = Cell(text, rank, partial)
    return table


def _partial_notes(grid: Sequence[GridResult]) -> list[str]:
    return [f"{r.method} on {r.dataset} ({r.pairing.matched} of {r.pairing.matched + r.pairing.missing} images)"
            for r in grid if r.partial]


def _md_escape(text: str) -> str:
    return text.replace("|", r"\|")


def format_markdown(grid: Sequence[GridResult], columns: str | Sequence[str] = "paper", decimals: int = 3) -> str:
    """A Markdown table: a header row of datasets, a row of metric names, then one row per method.

    Markdown headers span no columns, so each dataset names the first column of its group.
    """
    columns = _resolve(columns, grid)
    datasets, methods, _ = _axes(grid)
    table = table_cells(grid, columns, decimals)
    marks = {0: "{}", 1: "**{}**", 2: "<u>{}</u>", 3: "*{}*"}

    def shown(cell: Cell) -> str:
        if cell.text is None:
            return "-"
        return marks[cell.rank].format(cell.text) + ("†" if cell.partial else "")

    rows = [["Method", *(_md_escape(d) if i == 0 else "" for d in datasets for i in range(len(columns)))],
            ["", *(header(c) for _ in datasets for c in columns)]]
    rows += [[_md_escape(m), *(shown(table[d, m, c]) for d in datasets for c in columns)] for m in methods]
    widths = [max(3, *(len(row[i]) for row in rows)) for i in range(len(rows[0]))]
    rule = [":" + "-" * (w - 1) if i == 0 else "-" * (w - 1) + ":" for i, w in enumerate(widths)]
    lines = ["| " + " | ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))) + " |" for row in rows]
    lines.insert(1, "| " + " | ".join(rule) + " |")
    lines += ["", "Best in **bold**, second <u>underlined</u>, third in *italics*; ↑ higher is better, ↓ lower."]
    notes = _partial_notes(grid)
    if notes:
        lines.append(f"† Scored on fewer images than the dataset holds, not ranked: {'; '.join(notes)}.")
    return "\n".join(lines) + "\n"


TEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "→": r"$\rightarrow$", "β": r"$\beta$"}


def tex_escape(text: str) -> str:
    """Text safe in a LaTeX document compiled with pdflatex."""
    return "".join(TEX_SPECIALS.get(ch, ch) for ch in text)


def _tex_header(metric: str) -> str:
    body = TEX_LABELS.get(metric, rf"\mbox{{{tex_escape(metric)}}}")
    return f"${body}\\{'downarrow' if metric in LOWER_IS_BETTER else 'uparrow'}$"


def format_latex(grid: Sequence[GridResult], columns: str | Sequence[str] = "paper", decimals: int = 3,
                 leading_zero: bool = True) -> str:
    """A booktabs ``tabular``: datasets as \\multicolumn groups with \\cmidrule, methods as rows.

    The top three of each column go through \\bestscore, \\secondscore and \\thirdscore
    (bold, underline, italics unless defined before). `leading_zero=False` prints .918 for
    0.918. Needs ``\\usepackage{booktabs}``.
    """
    columns = _resolve(columns, grid)
    datasets, methods, _ = _axes(grid)
    table = table_cells(grid, columns, decimals)
    n = len(columns)

    def shown(cell: Cell) -> str:
        if cell.text is None:
            return "-"
        text = cell.text
        if not leading_zero and text.lstrip("-").startswith("0."):
            text = text.replace("0.", ".", 1)
        if cell.rank:
            text = f"\\{MACROS[cell.rank - 1][0]}{{{text}}}"
        return text + (r"$^\dagger$" if cell.partial else "")

    lines = ["% Requires \\usepackage{booktabs}. Define these macros before this table to restyle the top three."]
    lines += [f"\\providecommand{{\\{name}}}[1]{{{body}}}" for name, body in MACROS]
    lines += [f"\\begin{{tabular}}{{@{{}}l{'c' * n * len(datasets)}@{{}}}}", r"\toprule",
              " & ".join(["", *(f"\\multicolumn{{{n}}}{{c}}{{{tex_escape(d)}}}" for d in datasets)]) + r" \\",
              " ".join(f"\\cmidrule(lr){{{2 + i * n}-{1 + (i + 1) * n}}}" for i in range(len(datasets))),
              " & ".join(["Method", *(_tex_header(c) for _ in datasets for c in columns)]) + r" \\",
              r"\midrule"]
    lines += [" & ".join([tex_escape(m), *(shown(table[d, m, c]) for d in datasets for c in columns)]) + r" \\"
              for m in methods]
    lines.append(r"\bottomrule")
    notes = _partial_notes(grid)
    if notes:
        note = tex_escape(f"Scored on fewer images than the dataset holds, not ranked: {'; '.join(notes)}.")
        lines.append(f"\\multicolumn{{{1 + n * len(datasets)}}}{{l}}{{\\footnotesize $^\\dagger$ {note}}} \\\\")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def write_results_csv(grid: Sequence[GridResult], path: str | Path, columns: str | Sequence[str] = "paper",
                      decimals: int = 3) -> Path:
    """One row per (dataset, method): the numbers exactly as the tables show them, and a partial flag.

    Metric columns carry the tables' headers (``Sm↑``, ``MAE↓``); a missing value is empty.
    """
    columns = _resolve(columns, grid)
    datasets, methods, cells = _axes(grid)
    table = table_cells(grid, columns, decimals)
    path = _parent_made(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Dataset", "Method", *(header(c) for c in columns), "Partial"])
        for d in datasets:
            for m in methods:
                if (d, m) in cells:
                    writer.writerow([d, m, *(table[d, m, c].text or "" for c in columns),
                                     "true" if cells[d, m].partial else "false"])
    return path


def write_per_image_csv(grid: Sequence[GridResult], path: str | Path) -> Path:
    """One row per (dataset, method, image) with every per-image score at full precision, to find the worst."""
    datasets, methods, cells = _axes(grid)
    metrics = ordered(m for r in grid for scores in r.per_image.values() for m in scores)
    path = _parent_made(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Dataset", "Method", "Image", *(header(m) for m in metrics)])
        for d in datasets:
            for m in methods:
                if (d, m) not in cells:
                    continue
                for key, scores in sorted(cells[d, m].per_image.items()):
                    writer.writerow([d, m, key, *(_full(scores.get(metric)) for metric in metrics)])
    return path


def _full(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else repr(value)


def _parent_made(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def versions() -> dict[str, str]:
    """Versions of what the numbers depend on, for the record."""
    found = {"python": platform.python_version()}
    for package in ("salplug", "torch", "numpy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _finite(value: float) -> float | None:
    """JSON has no NaN: a missing number is null."""
    return value if math.isfinite(value) else None


def write_results_json(grid: Sequence[GridResult], path: str | Path, command: str | None = None,
                       comparisons: Sequence[dict] = ()) -> Path:
    """Every metric and curve of every (dataset, method) at full precision, its pairing and partial flag.

    With the command line and package versions, so the file says how it was made, and any
    paired `comparisons` (``salplug eval --compare``). Per-image scores are left to
    `write_per_image_csv`; NaN is written as null.
    """
    datasets, methods, _ = _axes(grid)
    payload = {
        "command": command,
        "versions": versions(),
        "datasets": datasets,
        "methods": methods,
        "results": [
            {"dataset": r.dataset, "method": r.method, "partial": r.partial,
             "pairing": asdict(r.pairing) if r.pairing is not None else None,
             "scores": {k: _finite(v) for k, v in r.scores.items()},
             "curves": {k: [_finite(v) for v in values] for k, values in r.curves.items()}}
            for r in grid
        ],
        **({"comparisons": list(comparisons)} if comparisons else {}),
    }
    path = _parent_made(path)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return path


def read_results_json(path: str | Path) -> list[GridResult]:
    """The grid `write_results_json` wrote (without per-image scores), to redraw tables without rescoring."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))

    def number(value: float | None) -> float:
        return math.nan if value is None else value

    return [GridResult(r["dataset"], r["method"], {k: number(v) for k, v in r["scores"].items()},
                       {k: [number(v) for v in values] for k, values in r["curves"].items()}, {},
                       _pairing(r["pairing"]) if r["pairing"] is not None else None)
            for r in payload["results"]]


def _pairing(fields: dict) -> Pairing:
    """A `Pairing` from JSON, whose lists of names come back as tuples."""
    return Pairing(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def write_outputs(grid: Sequence[GridResult], folder: str | Path, *, columns: str | Sequence[str] = "paper",
                  decimals: int = 3, leading_zero: bool = True, command: str | None = None,
                  highlight: str | None = None, comparisons: Sequence[dict] = ()) -> dict[str, Path]:
    """Write every output of a grid evaluation into `folder`; returns the files by name.

    ``table.md``, ``table.tex``, ``results.csv``, ``per-image.csv``, ``results.json``,
    ``curves.png`` / ``curves.pdf`` where the results hold curves, and ``report.html`` (with
    its thumbnails in ``report/``). `columns` is a preset name (`metric_columns`) or metric
    names; `leading_zero` applies to LaTeX only.
    """
    from salplug.metrics._report_page import write_report_page  # imported here: that module builds on this one

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns = _resolve(columns, grid)
    (folder / "table.md").write_text(format_markdown(grid, columns, decimals), encoding="utf-8")
    (folder / "table.tex").write_text(format_latex(grid, columns, decimals, leading_zero), encoding="utf-8")
    written = {"table.md": folder / "table.md", "table.tex": folder / "table.tex",
               "results.csv": write_results_csv(grid, folder / "results.csv", columns, decimals),
               "per-image.csv": write_per_image_csv(grid, folder / "per-image.csv"),
               "results.json": write_results_json(grid, folder / "results.json", command, comparisons)}
    written.update({p.name: p for p in plot_grid_curves(grid, folder / "curves", highlight=highlight)})
    written["report.html"] = write_report_page(grid, folder, columns=columns, decimals=decimals, command=command,
                                               files=list(written))
    return written
