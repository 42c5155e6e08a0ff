"""The paper-ready outputs of a grid evaluation print what papers print, and mark what they must.

One small grid by hand: two datasets × three methods, with a tie on DUTS-TE's Sm and a
partial result (B on ECSSD, best everywhere yet not comparable) that must take no rank.
"""

from __future__ import annotations

import csv
import json
import math

import pytest

from salplug.metrics import (
    GridResult,
    MethodScores,
    Pairing,
    draw_grid_curves,
    format_latex,
    format_markdown,
    metric_columns,
    plot_grid_curves,
    read_results_json,
    write_outputs,
    write_per_image_csv,
    write_results_csv,
    write_results_json,
)

SCORES = {
    ("DUTS-TE", "A"): (0.918, 0.950, 0.850, 0.031),
    ("DUTS-TE", "B"): (0.9121, 0.951, 0.860, 0.0301),
    ("DUTS-TE", "C"): (0.9119, 0.940, 0.800, 0.050),
    ("ECSSD", "A"): (0.930, 0.960, 0.900, 0.020),
    ("ECSSD", "B"): (0.950, 0.970, 0.910, 0.010),
    ("ECSSD", "C"): (0.920, 0.955, 0.890, 0.030),
}
"""(Sm, mean E, wF, MAE) per (dataset, method)."""


def result(dataset: str, method: str) -> GridResult:
    sm, em, wfm, mae = SCORES[dataset, method]
    level = [i / 255 for i in range(256)]
    per_image = {f"img{i}": {"sm": sm - i / 100, "mae": mae + i / 1000} for i in range(3)}
    partial = (dataset, method) == ("ECSSD", "B")
    return GridResult(
        dataset, method, {"sm": sm, "mean_e": em, "wfm": wfm, "mae": mae, "max_f": 0.9},
        {"precision": [1 - x / 2 for x in level], "recall": level, "fmeasure": [em - x / 4 for x in level],
         "emeasure": [em] * 256, "iou": [wfm - x / 3 for x in level], "dice": [wfm - x / 5 for x in level]},
        per_image, Pairing(matched=2 if partial else 3, missing=1 if partial else 0),
    )


@pytest.fixture
def grid() -> list[GridResult]:
    return [result(d, m) for d, m in SCORES]


MARKDOWN = """\
| Method |      DUTS-TE |              |              |              |        ECSSD |              |              |              |
| :----- | -----------: | -----------: | -----------: | -----------: | -----------: | -----------: | -----------: | -----------: |
|        |          Sm↑ |          Em↑ |         wFβ↑ |         MAE↓ |          Sm↑ |          Em↑ |         wFβ↑ |         MAE↓ |
| A      |    **0.918** | <u>0.950</u> | <u>0.850</u> | <u>0.031</u> |    **0.930** |    **0.960** |    **0.900** |    **0.020** |
| B      | <u>0.912</u> |    **0.951** |    **0.860** |    **0.030** |       0.950† |       0.970† |       0.910† |       0.010† |
| C      | <u>0.912</u> |      *0.940* |      *0.800* |      *0.050* | <u>0.920</u> | <u>0.955</u> | <u>0.890</u> | <u>0.030</u> |

Best in **bold**, second <u>underlined</u>, third in *italics*; ↑ higher is better, ↓ lower.
† Scored on fewer images than the dataset holds, not ranked: B on ECSSD (2 of 3 images).
"""


def test_the_markdown_table_is_exact(grid):
    assert format_markdown(grid) == MARKDOWN


def test_markdown_shows_a_missing_cell_as_a_dash_and_escapes_pipes(grid):
    grid = [r for r in grid if (r.dataset, r.method) != ("ECSSD", "C")]
    grid[0].method = "A|x"
    grid[3].method = "A|x"
    lines = format_markdown(grid).splitlines()
    assert lines[3].startswith(r"| A\|x ")
    assert [c.strip() for c in lines[5].split("|")[-5:-1]] == ["-", "-", "-", "-"]


def latex_rows(text: str) -> dict[str, list[str]]:
    """Body rows of a table by method name, split into cells."""
    body = text.split("\\midrule\n")[1].split("\\bottomrule")[0]
    return {cells[0]: cells[1:] for cells in (line.removesuffix(r" \\").split(" & ") for line in body.splitlines())}


def test_latex_is_a_booktabs_table_with_datasets_as_groups(grid):
    text = format_latex(grid)
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert text.count(rule) == 1, rule
    assert text.index(r"\toprule") < text.index(r"\midrule") < text.index(r"\bottomrule")
    assert r"\begin{tabular}{@{}lcccccccc@{}}" in text
    assert r" & \multicolumn{4}{c}{DUTS-TE} & \multicolumn{4}{c}{ECSSD} \\" in text
    assert r"\cmidrule(lr){2-5} \cmidrule(lr){6-9}" in text
    assert (r"Method & $S_m\uparrow$ & $E_m\uparrow$ & $F_\beta^w\uparrow$ & $\mathrm{MAE}\downarrow$ & "
            r"$S_m\uparrow$") in text


def test_latex_marks_the_top_three_through_overridable_macros(grid):
    text = format_latex(grid)
    assert r"\providecommand{\bestscore}[1]{\textbf{#1}}" in text
    assert r"\providecommand{\secondscore}[1]{\underline{#1}}" in text
    assert r"\providecommand{\thirdscore}[1]{\textit{#1}}" in text
    rows = latex_rows(text)
    assert rows["A"][:4] == [r"\bestscore{0.918}", r"\secondscore{0.950}", r"\secondscore{0.850}", r"\secondscore{0.031}"]
    assert rows["B"][:4] == [r"\secondscore{0.912}", r"\bestscore{0.951}", r"\bestscore{0.860}", r"\bestscore{0.030}"]
    assert rows["C"][:4] == [r"\secondscore{0.912}", r"\thirdscore{0.940}", r"\thirdscore{0.800}", r"\thirdscore{0.050}"]
    assert rows["B"][4:] == [r"0.950$^\dagger$", r"0.970$^\dagger$", r"0.910$^\dagger$", r"0.010$^\dagger$"]
    assert rows["A"][4:] == [r"\bestscore{0.930}", r"\bestscore{0.960}", r"\bestscore{0.900}", r"\bestscore{0.020}"]
    assert (r"\multicolumn{9}{l}{\footnotesize $^\dagger$ Scored on fewer images than the dataset holds, "
            r"not ranked: B on ECSSD (2 of 3 images).} \\") in text


def test_latex_drops_the_leading_zero_only_when_asked(grid):
    kept, dropped = latex_rows(format_latex(grid)), latex_rows(format_latex(grid, leading_zero=False))
    assert kept["C"][4] == r"\secondscore{0.920}"
    assert dropped["C"][4] == r"\secondscore{.920}"
    assert dropped["B"][7] == r".010$^\dagger$"
    assert not any("0." in cell for cells in dropped.values() for cell in cells)


def test_latex_escapes_names(grid):
    for r in grid:
        r.method = {"A": "prior → A_1 & 50%"}.get(r.method, r.method)
    assert r"prior $\rightarrow$ A\_1 \& 50\%" in latex_rows(format_latex(grid))


def test_ranks_follow_the_displayed_decimals(grid):
    """At two decimals A's and B's DUTS-TE Em both print 0.95: both are best, and C is second."""
    rows = latex_rows(format_latex(grid, decimals=2))
    assert [rows[m][1] for m in "ABC"] == [r"\bestscore{0.95}", r"\bestscore{0.95}", r"\secondscore{0.94}"]


def read_csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_results_csv_is_rounded_as_displayed_with_the_tables_headers(grid, tmp_path):
    rows = read_csv(write_results_csv(grid, tmp_path / "results.csv"))
    metric_row = [c.strip() for c in MARKDOWN.splitlines()[2].strip("| ").split("|")]
    assert rows[0] == ["Dataset", "Method", *metric_row[:4], "Partial"]
    assert rows[2] == ["DUTS-TE", "B", "0.912", "0.951", "0.860", "0.030", "false"]
    assert rows[5] == ["ECSSD", "B", "0.950", "0.970", "0.910", "0.010", "true"]
    assert len(rows) == 7
    two = read_csv(write_results_csv(grid, tmp_path / "two.csv", columns=["sm", "max_f"], decimals=2))
    assert two[0] == ["Dataset", "Method", "Sm↑", "maxFβ↑", "Partial"]
    assert two[1] == ["DUTS-TE", "A", "0.92", "0.90", "false"]


def test_per_image_csv_has_every_image_of_every_cell_at_full_precision(grid, tmp_path):
    rows = read_csv(write_per_image_csv(grid, tmp_path / "per-image.csv"))
    assert rows[0] == ["Dataset", "Method", "Image", "MAE↓", "Sm↑"]
    body = rows[1:]
    assert len(body) == 6 * 3
    assert {(d, m) for d, m, *_ in body} == set(SCORES)
    for dataset, method, key, mae, sm in body:
        expected = result(dataset, method).per_image[key]
        assert (float(mae), float(sm)) == (expected["mae"], expected["sm"])


def test_json_round_trips_every_metric_and_records_how_it_was_made(grid, tmp_path):
    grid[0].scores["sm"] = math.nan
    path = write_results_json(grid, tmp_path / "results.json", command="salplug eval --dataset d")
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["command"] == "salplug eval --dataset d"
    assert set(payload["versions"]) >= {"salplug", "torch", "numpy"}
    assert payload["datasets"] == ["DUTS-TE", "ECSSD"] and payload["methods"] == ["A", "B", "C"]
    assert [r["partial"] for r in payload["results"]] == [False, False, False, False, True, False]
    assert payload["results"][4]["pairing"] == {"matched": 2, "missing": 1, "extra": 0, "resized": 0,
                                                  "missing_names": [], "extra_names": [], "resized_names": []}
    assert payload["results"][0]["scores"]["sm"] is None
    back = read_results_json(path)
    assert math.isnan(back[0].scores.pop("sm"))
    grid[0].scores.pop("sm")
    for r in grid:
        r.per_image = {}
    assert back == grid


def test_curves_draw_each_dataset_as_a_row_with_the_highlight_on_top(grid):
    figure = draw_grid_curves(grid, highlight="A")
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == [
        "DUTS-TE: precision-recall", "DUTS-TE: F-measure", "DUTS-TE: E-measure", "DUTS-TE: IoU", "DUTS-TE: Dice",
        "ECSSD: precision-recall\n† fewer images: B", "ECSSD: F-measure", "ECSSD: E-measure", "ECSSD: IoU",
        "ECSSD: Dice",
    ]
    for ax in axes:
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["B", "C", "A"]
        assert lines[-1].get_linewidth() > max(line.get_linewidth() for line in lines[:-1])
    for ax, curve in zip(axes[3:5], ("iou", "dice")):
        drawn = ax.get_lines()[-1]  # A, the highlight: index i of a curve sits at threshold 255 - i
        assert list(drawn.get_xdata()) == list(range(255, -1, -1)) and list(drawn.get_ydata()) == grid[0].curves[curve]


def test_curves_refuse_an_unknown_highlight_and_skip_a_grid_without_curves(grid, tmp_path):
    with pytest.raises(ValueError, match="highlight"):
        draw_grid_curves(grid, highlight="Z")
    for r in grid:
        r.curves = {}
    assert plot_grid_curves(grid, tmp_path / "curves") == []
    assert not list(tmp_path.iterdir())


def test_presets_name_their_columns():
    assert metric_columns("paper") == ["sm", "mean_e", "wfm", "mae"]
    assert metric_columns("pysodevaltoolkit") == [
        "sm", "wfm", "mae", "max_f", "mean_f", "adp_f", "max_e", "mean_e", "adp_e"]
    assert metric_columns("all")[:2] == ["mae", "adp_f"]
    with pytest.raises(ValueError, match="paper"):
        metric_columns("cvpr")


def test_presets_on_a_grid_keep_the_metrics_it_holds(grid):
    assert metric_columns("all", grid) == ["mae", "max_f", "sm", "mean_e", "wfm"]
    assert metric_columns("pysodevaltoolkit", grid) == ["sm", "wfm", "mae", "max_f", "mean_e"]


def test_a_grid_result_is_made_from_method_scores():
    scores = MethodScores("A", scores={"sm": 0.9}, curves={"fmeasure": [0.5] * 256}, count=2,
                          failed={"maps/c.png": "no map for this image"},
                          per_image={"sm": {"a": 0.8, "b": 1.0}, "mae": {"a": 0.1, "b": 0.0}})
    r = GridResult.from_scores("D", scores)
    assert (r.dataset, r.method, r.scores, r.curves["fmeasure"][0]) == ("D", "A", {"sm": 0.9}, 0.5)
    assert r.per_image == {"a": {"sm": 0.8, "mae": 0.1}, "b": {"sm": 1.0, "mae": 0.0}}
    assert r.pairing == Pairing(matched=2, missing=1) and r.partial
    assert not GridResult.from_scores("D", scores, Pairing(matched=2, extra=4, resized=1)).partial


def test_two_results_for_one_cell_are_refused(grid):
    with pytest.raises(ValueError, match="two results for method 'A' on dataset 'DUTS-TE'"):
        format_markdown([*grid, result("DUTS-TE", "A")])


def test_write_outputs_writes_every_file_and_valid_png_and_pdf_curves(grid, tmp_path):
    """One dataset only: saving figures is the slow part."""
    grid = [r for r in grid if r.dataset == "DUTS-TE"]
    written = write_outputs(grid, tmp_path / "out", columns="pysodevaltoolkit", command="salplug eval", highlight="C")
    assert sorted(written) == ["curves.pdf", "curves.png", "per-image.csv", "report.html", "results.csv",
                               "results.json", "table.md", "table.tex"]
    assert all(p.is_file() and p.parent == tmp_path / "out" for p in written.values())
    assert written["curves.png"].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert written["curves.pdf"].read_bytes().startswith(b"%PDF-")
    assert "maxFβ↑" in written["table.md"].read_text(encoding="utf-8")
    assert read_csv(written["results.csv"])[0][2:7] == ["Sm↑", "wFβ↑", "MAE↓", "maxFβ↑", "Em↑"]
