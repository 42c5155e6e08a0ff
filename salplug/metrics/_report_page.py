"""``report.html``: a grid evaluation as one page that opens from disk, to read the tables and see the failures.

The page has its styles and script inline and loads nothing from the network. Photos, masks
and maps are small thumbnails written to ``report/`` beside it and referenced by relative
paths, so the page stays light with hundreds of images and works wherever the folder is
moved. The per-image browser lists, per dataset, each image's photo, mask and every
method's map with its scores, worst first; a click on a metric sorts by it.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from salplug.data._io import read_image, read_map
from salplug.errors import ImageReadError
from salplug.metrics._evaluation import read_mask_uint8
from salplug.metrics._outputs import (
    LOWER_IS_BETTER,
    GridResult,
    _axes,
    _partial_notes,
    _resolve,
    header,
    ordered,
    table_cells,
    versions,
)

PAGE = "report.html"
THUMBNAILS = "report"
"""The page's file name, and the folder beside it that holds its thumbnails."""

THUMBNAIL = 160
"""Longest side of a thumbnail in pixels: enough to see what went wrong, small enough for hundreds of rows."""

MARKS = {0: "{}", 1: "<strong>{}</strong>", 2: "<u>{}</u>", 3: "<em>{}</em>"}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; } h3 { font-size: 1.05em; }
code { background: #f3f3f3; padding: 0 .2em; }
table { border-collapse: collapse; }
table.scores th, table.scores td { padding: .25em .6em; text-align: right; border-bottom: 1px solid #ddd; }
table.scores th[scope="row"], table.scores th[rowspan] { text-align: left; }
table.scores th[colspan] { text-align: center; }
table.scores td.rank1 { background: #e3f0ff; } table.scores td.rank2 { background: #eef6ff; }
table.scores td.rank3 { background: #f6faff; }
img.curves { max-width: 100%; }
table.images th, table.images td { padding: .3em; border-bottom: 1px solid #ddd; vertical-align: top; }
table.images th { text-align: left; }
table.images thead th { position: sticky; top: 0; background: #fff; z-index: 1; }
table.images img, .placeholder { width: 160px; height: 120px; object-fit: contain; background: #eee; display: block; }
.placeholder { display: flex; align-items: center; justify-content: center; color: #777; font-size: .85em; }
.key { font-family: monospace; font-size: .85em; word-break: break-all; max-width: 160px; }
.values { font-size: .85em; font-variant-numeric: tabular-nums; }
button.sort { font-size: .8em; margin: 0 .2em .2em 0; cursor: pointer; border: 1px solid #aaa; background: #f8f8f8; }
button.sort[aria-pressed="true"] { background: #205fa8; color: #fff; border-color: #205fa8; }
.status { color: #555; }
"""

SCRIPT = """
const settings = JSON.parse(document.getElementById('report-settings').textContent);
function valueOf(scores, method, metric) {
  if (method >= 0) {
    const v = scores[method] ? scores[method][metric] : null;
    return typeof v === 'number' ? v : null;
  }
  const found = scores.map(s => s ? s[metric] : null).filter(v => typeof v === 'number');
  return found.length ? found.reduce((a, b) => a + b, 0) / found.length : null;
}
document.querySelectorAll('table.images').forEach(table => {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows).map(row => ({row, key: row.dataset.key, scores: JSON.parse(row.dataset.scores)}));
  const methods = JSON.parse(table.dataset.methods);
  const status = document.getElementById(table.id + '-status');
  let current = null;
  function sortBy(method, metric, worstFirst) {
    const sign = (settings.lower.includes(metric) ? -1 : 1) * (worstFirst ? 1 : -1);
    const keyed = rows.map(r => ({...r, value: valueOf(r.scores, method, metric)}));
    keyed.sort((a, b) => {
      if (a.value === null || b.value === null) {
        return (a.value === null) - (b.value === null) || a.key.localeCompare(b.key);
      }
      return sign * (a.value - b.value) || a.key.localeCompare(b.key);
    });
    keyed.forEach(r => body.appendChild(r.row));
    current = {method, metric, worstFirst};
    const order = worstFirst ? 'worst' : 'best';
    table.dataset.sorted = metric + ':' + (method >= 0 ? methods[method] : 'mean') + ':' + order;
    table.querySelectorAll('button.sort').forEach(b => {
      b.setAttribute('aria-pressed', String(Number(b.dataset.method) === method && b.dataset.metric === metric));
    });
    const who = method >= 0 ? methods[method] : 'the mean of the methods';
    status.textContent = 'Sorted by ' + settings.labels[metric] + ' of ' + who + ', ' +
      (worstFirst ? 'worst' : 'best') + ' first; click it again for ' + (worstFirst ? 'best' : 'worst') + ' first.';
  }
  table.querySelectorAll('button.sort').forEach(button => button.addEventListener('click', () => {
    const method = Number(button.dataset.method), metric = button.dataset.metric;
    const same = current && current.method === method && current.metric === metric;
    sortBy(method, metric, same ? !current.worstFirst : true);
  }));
  if (table.dataset.metric) sortBy(-1, table.dataset.metric, true);
});
"""


def write_report_page(grid: Sequence[GridResult], folder: str | Path, *, columns: str | Sequence[str] = "paper",
                      decimals: int = 3, command: str | None = None, files: Sequence[str] = ()) -> Path:
    """Write ``report.html`` and its thumbnails (in ``report/``) into `folder`; returns the page's path.

    `files` names the other outputs in `folder`, linked from the page; ``curves.png`` among
    them is shown. Images whose files are unknown or unreadable show a placeholder saying so.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns = _resolve(columns, grid)
    datasets, _, _ = _axes(grid)
    title = "salplug evaluation: " + ", ".join(datasets)
    parts = [f"<h1>{html.escape(title)}</h1>", _about(command, files), "<h2>Scores</h2>",
             _scores_table(grid, columns, decimals)]
    if "curves.png" in files:
        parts += ["<h2>Curves</h2>", '<img class="curves" src="curves.png" alt="threshold curves of every method">']
    parts += ["<h2>Images</h2>", *(_dataset_browser(grid, i, d, columns, folder) for i, d in enumerate(datasets))]
    settings = {"lower": sorted(LOWER_IS_BETTER), "labels": {m: header(m) for r in grid for s in r.per_image.values()
                                                             for m in s}}
    page = "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>", *parts,
        f'<script id="report-settings" type="application/json">{_script_json(settings)}</script>',
        f"<script>{SCRIPT}</script>", "</body>", "</html>", ""])
    path = folder / PAGE
    path.write_text(page, encoding="utf-8")
    return path


def _about(command: str | None, files: Sequence[str]) -> str:
    lines = []
    if command:
        lines.append(f"<p>Made by <code>{html.escape(command)}</code></p>")
    lines.append("<p>" + ", ".join(f"{html.escape(k)} {html.escape(v)}" for k, v in versions().items()) + "</p>")
    links = [name for name in files if name != PAGE]
    if links:
        lines.append("<p>Files: " + " · ".join(f'<a href="{html.escape(n)}">{html.escape(n)}</a>' for n in links)
                     + "</p>")
    return "\n".join(lines)


def _scores_table(grid: Sequence[GridResult], columns: Sequence[str], decimals: int) -> str:
    """The table of ``table.md``: datasets as column groups, methods as rows, the top three marked."""
    datasets, methods, _ = _axes(grid)
    table = table_cells(grid, columns, decimals)
    groups = "".join(f'<th colspan="{len(columns)}">{html.escape(d)}</th>' for d in datasets)
    names = "".join(f"<th>{html.escape(header(c))}</th>" for _ in datasets for c in columns)
    rows = []
    for method in methods:
        cells = []
        for d in datasets:
            for c in columns:
                cell = table[d, method, c]
                text = "-" if cell.text is None else MARKS[cell.rank].format(cell.text) + "†" * cell.partial
                cells.append(f'<td class="rank{cell.rank}">{text}</td>' if cell.rank else f"<td>{text}</td>")
        rows.append(f'<tr><th scope="row">{html.escape(method)}</th>{"".join(cells)}</tr>')
    lines = ['<table class="scores">', f'<thead><tr><th rowspan="2">Method</th>{groups}</tr>',
             f"<tr>{names}</tr></thead>", "<tbody>", *rows, "</tbody></table>",
             "<p>Best in <strong>bold</strong>, second <u>underlined</u>, third in <em>italics</em>; "
             "↑ higher is better, ↓ lower.</p>"]
    notes = _partial_notes(grid)
    if notes:
        notes = html.escape("; ".join(notes))
        lines.append(f"<p>† Scored on fewer images than the dataset holds, not ranked: {notes}.</p>")
    return "\n".join(lines)


def _dataset_browser(grid: Sequence[GridResult], index: int, dataset: str, columns: Sequence[str],
                     folder: Path) -> str:
    """One dataset's images as table rows: photo, mask, then each method's map and scores, in key order.

    The script sorts the rows on load (worst first by the mean of the methods on the first
    metric shown) and on every click of a metric's button; rows with maps but no per-image
    scores keep key order.
    """
    cells = [r for r in grid if r.dataset == dataset]
    keys = sorted({k for r in cells for k in (*r.per_image, *r.maps)})
    heading = f"<h3>{html.escape(dataset)}</h3>"
    if not keys:
        return heading + "<p>No per-image scores for this dataset.</p>"
    held = ordered({m for r in cells for s in r.per_image.values() for m in s})
    shown = [m for m in columns if m in held] or held
    table_id = f"images-{index}"

    def buttons(method: int, name: str) -> str:
        return "".join(f'<button class="sort" type="button" data-method="{method}" data-metric="{html.escape(m)}" '
                       f'title="sort by {html.escape(header(m))} of {html.escape(name)}">{html.escape(header(m))}'
                       "</button>" for m in shown)

    head = ["<th>photo</th><th>mask</th>", *(f"<th>{html.escape(r.method)}</th>" for r in cells)]
    sort_row = [f'<th colspan="2">mean of the methods<br>{buttons(-1, "the mean of the methods")}</th>',
                *(f"<th>{buttons(j, r.method)}</th>" for j, r in enumerate(cells))]
    rows = [_image_row(cells, key, n, shown, folder / THUMBNAILS / f"d{index}", folder)
            for n, key in enumerate(keys)]
    methods = _script_json([r.method for r in cells])
    return "\n".join([
        heading, f'<p class="status" id="{table_id}-status" aria-live="polite"></p>',
        f'<table class="images" id="{table_id}" data-metric="{html.escape(shown[0] if shown else "")}" '
        f'data-methods="{html.escape(methods)}">',
        f'<thead><tr>{"".join(head)}</tr><tr>{"".join(sort_row)}</tr></thead>', "<tbody>", *rows, "</tbody></table>"])


def _image_row(cells: Sequence[GridResult], key: str, n: int, shown: Sequence[str], thumbs: Path,
               folder: Path) -> str:
    photo = next((r.images[key] for r in cells if key in r.images), None)
    mask = next((r.masks[key] for r in cells if key in r.masks), None)
    parts = [f"<td>{_thumbnail(photo, 'photo', thumbs / f'{n:05d}-photo.jpg', folder)}"
             f'<div class="key">{html.escape(key)}</div></td>',
             f"<td>{_thumbnail(mask, 'mask', thumbs / f'{n:05d}-mask.png', folder)}</td>"]
    scores = []
    for j, r in enumerate(cells):
        values = r.per_image.get(key)
        scores.append({m: v for m, v in values.items() if math.isfinite(v)} if values is not None else None)
        if values is None and key not in r.maps:
            parts.append('<td><div class="placeholder">not scored</div></td>')
            continue
        listed = "<br>".join(f"{html.escape(header(m))} {values[m]:.3f}" for m in shown
                             if values is not None and m in values and math.isfinite(values[m]))
        thumb = _thumbnail(r.maps.get(key), "map", thumbs / f"{n:05d}-m{j}.png", folder)
        parts.append(f'<td>{thumb}<div class="values">{listed}</div></td>')
    return (f'<tr data-key="{html.escape(key)}" data-scores="{html.escape(json.dumps(scores))}">'
            + "".join(parts) + "</tr>")


def _thumbnail(source: str | None, kind: str, target: Path, folder: Path) -> str:
    """An ``<img>`` of `source` shrunk into `target`, or a placeholder saying why there is none."""
    if source is None:
        return f'<div class="placeholder">no {kind} file</div>'
    try:
        pixels = _pixels(Path(source), kind)
    except (ImageReadError, OSError) as err:
        return f'<div class="placeholder" title="{html.escape(str(err))}">{kind} unreadable</div>'
    height, width = pixels.shape[:2]
    scale = min(1.0, THUMBNAIL / max(height, width))
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    target.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 85] if target.suffix == ".jpg" else []
    ok, encoded = cv2.imencode(target.suffix, pixels, params)
    if not ok:
        return f'<div class="placeholder">{kind} not encodable</div>'
    target.write_bytes(encoded.tobytes())
    src = target.relative_to(folder).as_posix()
    return f'<img src="{html.escape(src)}" alt="{kind}" title="{html.escape(source)}" loading="lazy">'


def _pixels(path: Path, kind: str) -> np.ndarray:
    """uint8 pixels as the page shows them: photos in BGR for OpenCV, masks binarised as scored, maps as stored."""
    if kind == "photo":
        rgb = np.round(read_image(path) * 255).astype(np.uint8)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if kind == "mask":
        return np.where(read_mask_uint8(path, warned={path.parent}) > 128, np.uint8(255), np.uint8(0))
    return np.round(read_map(path) * 255).astype(np.uint8)


def _script_json(value: object) -> str:
    """JSON safe inside a ``<script>`` element: no ``</script>`` can close it early."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")
