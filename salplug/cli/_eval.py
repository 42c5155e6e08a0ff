"""``salplug eval``: a grid of datasets × methods scored with the SOD metrics, as PySODEvalToolkit does.

Datasets come from ``--dataset [NAME=]DIR`` (repeatable) or a grid file (``--grid``);
methods from folders of maps (``--maps NAME=PATTERN``, the pattern may hold ``{dataset}``),
the datasets' stored priors (``--priors``) and chains run on the spot (``--chain``). Every
(method, dataset) pairing is reported before any scoring; a row missing images is marked in
every output and makes the exit code 1 unless ``--allow-partial``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

from salplug.cli._options import (
    EXIT_FAILED_INPUTS,
    EXIT_OK,
    CommandError,
    add_chain_settings,
    add_engine,
    chain_on_device,
    positive,
    ray_options,
)
from salplug.data._datasets import SODDataset, read_subset
from salplug.errors import did_you_mean
from salplug.host._factory import get_component
from salplug.metrics._evaluation import MISSING, MethodScores, require_pairs, score_chain, score_folder
from salplug.metrics._grid import Cell, GridDataset, GridRun, ScoreCache, pair_chain, pair_maps, pairing_report, score_grid
from salplug.metrics._gridspec import DatasetSpec, GridSpec, load_grid
from salplug.metrics._outputs import PRESETS, format_markdown, metric_columns, write_outputs
from salplug.metrics._paired import compare_methods, format_comparison


def add_eval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", action="append", default=[], metavar="[NAME=]DIR",
                        help="a dataset: DIR/images, DIR/masks, DIR/priors/<name>; NAME defaults to DIR's "
                             "folder name; repeat it for a grid of datasets")
    parser.add_argument("--grid", metavar="FILE",
                        help="datasets and methods from a YAML grid file (salplug schema grid prints its schema)")
    parser.add_argument("--subset", metavar="FILE",
                        help="score only the images whose stems FILE lists, one per line (# starts a comment)")
    parser.add_argument("--maps", nargs="+", action="extend", default=[], metavar="NAME=PATTERN",
                        help="a method's folder of maps; {dataset} in PATTERN stands for the dataset's name, "
                             "e.g. mine=results/{dataset}")
    parser.add_argument("--priors", nargs="+", action="extend", default=[], metavar="NAME",
                        help="prior folders of the datasets ('all' for every one): scored as they are, or, "
                             "with --chain, each the chain's starting maps")
    parser.add_argument("--chain", nargs="+", action="extend", default=[], metavar="[NAME=]CHAIN",
                        help="run chains (names from salplug list chain, or spec files) over the photos and score them")
    parser.add_argument("--name", metavar="NAME", help="with one --chain, its name in the results (default: the spec's stem)")
    parser.add_argument("--score-input", action="store_true", help="with --chain, also score the chain's input maps")
    parser.add_argument("--metrics", metavar="LIST", help="comma-separated metric names (default: all installed)")
    parser.add_argument("--columns", metavar="PRESET",
                        help=f"table columns: a preset ({', '.join([*PRESETS, 'all'])}) or comma-separated "
                             "metric keys such as sm,mae (default: paper, or all when --metrics leaves none of paper's)")
    parser.add_argument("--highlight", metavar="NAME", help="draw this method thicker, on top, in the curves")
    parser.add_argument("--batch-size", type=positive, default=8, metavar="N", help="images per batch (default 8)")
    parser.add_argument("--device", metavar="DEV", help="torch device for the chain (default: cuda if available)")
    parser.add_argument("--save-maps", metavar="DIR", help="with --chain, write its maps to DIR/<dataset>/<prior or name>/")
    parser.add_argument("-o", "--out", metavar="DIR",
                        help="write table.md, table.tex, results.csv, per-image.csv, results.json and curves to DIR; "
                             "scores of stored maps are cached in DIR/.cache")
    parser.add_argument("--no-cache", action="store_true", help="score every cell again, ignoring DIR/.cache")
    parser.add_argument("--allow-partial", action="store_true",
                        help="exit 0 even when some method lacks maps for some images (the rows stay marked)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="name every missing, extra and resized map")
    parser.add_argument(
        "--compare", nargs=2, metavar=("A", "B"),
        help="compare two of the scored methods image by image, on each dataset: per metric, the mean of A − B "
        "over the images both scored and its 95%% bootstrap interval (2000 resamples of the images, seeded)",
    )
    add_engine(parser)
    add_chain_settings(parser)


def _named(text: str, flag: str) -> tuple[str | None, str]:
    """``NAME=VALUE`` as (NAME, VALUE); a value without ``=`` as (None, VALUE)."""
    name, sep, value = text.partition("=")
    if not sep:
        return None, text
    if not name or not value:
        raise CommandError(f"{flag}: expected NAME=VALUE, got {text!r}")
    return name, value


def _datasets(args: argparse.Namespace, spec: GridSpec | None) -> list[GridDataset]:
    """Every dataset, named, with its subset applied and at least one image to score."""
    if spec is not None and args.dataset:
        raise CommandError("--dataset: the grid file names the datasets; give one or the other")
    subset = read_subset(args.subset) if args.subset else None
    found: list[GridDataset] = []
    if spec is not None:
        for name, entry in spec.datasets.items():
            if isinstance(entry, DatasetSpec):
                own = read_subset(entry.subset) if entry.subset else subset
                data = SODDataset(Path(entry.images).parent, own, Path(entry.images), Path(entry.masks))
                found.append(GridDataset(name, data, entry.map_prefix, entry.map_suffix))
            else:
                found.append(GridDataset(name, SODDataset(entry, subset)))
    for text in args.dataset:
        name, folder = _named(text, "--dataset")
        found.append(GridDataset(name or Path(folder).resolve().name, SODDataset(folder, subset)))
    if not found:
        raise CommandError("eval: expected a dataset: --dataset DIR (repeatable) or --grid FILE")
    names = [d.name for d in found]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise CommandError(f"--dataset: expected distinct names, got {twice!r} twice; name them with NAME=DIR")
    if subset is not None:
        absent = sorted(subset - set().union(*(d.data.paired for d in found)))
        if absent:
            raise CommandError(f"--subset {args.subset}: expected stems of images with masks, got {len(absent)} "
                               f"that no dataset holds: {', '.join(absent[:5])}{' …' if len(absent) > 5 else ''}")
    for dataset in found:
        require_pairs(dataset.data)
    return found


def _folder_of(pattern: str, dataset: str) -> Path:
    return Path(pattern.replace("{dataset}", dataset))


def _maps_methods(args: argparse.Namespace, spec: GridSpec | None,
                  datasets: list[GridDataset]) -> dict[str, dict[str, Path]]:
    """Method name → dataset name → folder of maps, from --maps and the grid file."""
    methods: dict[str, dict[str, Path]] = {}
    given = [(f"{args.grid}: method {name}", name, value)
             for name, value in (spec.methods.items() if spec is not None else ())]
    for text in args.maps:
        name, pattern = _named(text, "--maps")
        if name is None:
            raise CommandError(f"--maps: expected NAME=PATTERN, got {text!r}")
        given.append((f"--maps {name}", name, pattern))
    for where, name, value in given:
        if isinstance(value, str):
            if len(datasets) > 1 and "{dataset}" not in value:
                raise CommandError(f"{where}: expected {{dataset}} in the pattern with several datasets, "
                                   f"got {value!r}")
            folders = {d.name: _folder_of(value, d.name) for d in datasets}
        else:
            folders = {d: Path(f) for d, f in value.items()}
        if not any(f.is_dir() for f in folders.values()):
            found = ", ".join(str(f) for f in folders.values()) or "none"
            raise CommandError(f"{where}: expected a folder of maps at {found}, got "
                               f"{'a file' if any(f.exists() for f in folders.values()) else 'nothing'}")
        methods[name] = folders
    return methods


def _prior_names(datasets: list[GridDataset], asked: list[str], every: bool) -> list[str]:
    """The --priors names, every one checked before any scoring starts: on some dataset, or on `every` one."""
    present = {d.name: d.data.prior_names() for d in datasets}
    known = sorted(set().union(*present.values()))
    names = known if asked == ["all"] else asked
    for name in names:
        lacking = [d for d in datasets if name not in present[d.name]]
        if len(lacking) == len(datasets) or (every and lacking):
            d = lacking[0]
            raise CommandError(f"--priors {name}: {d.data.root} has no prior folder {name!r} "
                               f"(priors there: {', '.join(present[d.name]) or 'none'})"
                               f"{did_you_mean(name, present[d.name])}")
    return names


def _chains(args: argparse.Namespace, spec: GridSpec | None) -> list[tuple[str, str]]:
    """(name, chain) of every chain to run."""
    chains = list(spec.chains.items()) if spec is not None else []
    if args.name and len(args.chain) != 1:
        raise CommandError(f"--name: names one --chain, got {len(args.chain)}; name several with NAME=CHAIN")
    for text in args.chain:
        name, chain = _named(text, "--chain")
        chains.append((name or args.name or Path(chain).stem, chain))
    return chains


def _columns(text: str | None) -> str | list[str]:
    if text is None:
        return "paper"
    if "," in text or text not in [*PRESETS, "all"]:
        names = [m.strip().lower() for m in text.split(",") if m.strip()]
        if not names:
            raise CommandError(f"--columns: expected a preset or metric keys, got {text!r}")
        return names
    return text


def _plan(args: argparse.Namespace) -> tuple[list[Cell], list[GridDataset]]:
    """Every cell of the grid, paired, with every name checked: nothing is scored yet."""
    spec = load_grid(args.grid) if args.grid else None
    datasets = _datasets(args, spec)
    maps = _maps_methods(args, spec, datasets)
    chains = _chains(args, spec)
    priors = _prior_names(datasets, args.priors, every=bool(chains))
    if not (maps or priors or chains):
        raise CommandError("eval: expected something to score: --maps, --priors and/or --chain (or methods in --grid)")
    options = ray_options(args)
    built = [(name, chain_on_device(chain, "cpu" if options else args.device, args.settings)) for name, chain in chains]
    cells: list[Cell] = []
    for dataset in datasets:
        cells += [pair_maps(dataset, name, folders.get(dataset.name)) for name, folders in maps.items()]
        if built:
            cells += [pair_chain(dataset, name, chain, priors, args.score_input) for name, chain in built]
        else:
            cells += [pair_maps(dataset, p, dataset.data.root / "priors" / p) for p in priors]
    rows = list(dict.fromkeys(row for cell in cells for row in cell.rows))
    for dataset in datasets:
        mine = [row for cell in cells if cell.dataset is dataset for row in cell.rows]
        twice = next((row for row in mine if mine.count(row) > 1), None)
        if twice is not None:
            raise CommandError(f"eval: expected distinct method names, got {twice!r} twice")
    for flag, names in (("--compare", args.compare or []), ("--highlight", [args.highlight] if args.highlight else [])):
        for name in names:
            if name not in rows:
                raise CommandError(f"{flag} {name}: expected one of the methods scored here "
                                   f"({', '.join(rows)}), got {name!r}{did_you_mean(name, rows)}")
    if args.compare and args.compare[0] == args.compare[1]:
        raise CommandError(f"--compare: expected two different methods, got {args.compare[0]!r} twice")
    return cells, datasets


def _run(args: argparse.Namespace, metrics: list[str] | None) -> GridRun:
    options = ray_options(args)
    if options:
        from salplug.distributed._ray_eval import score_chain_ray, score_folder_ray

        score_maps = partial(score_folder_ray, **{k: v for k, v in options.items() if k != "gpus_per_worker"})
        score_run = partial(score_chain_ray, **options)
    else:
        score_maps = partial(score_folder, progress=not args.no_progress)
        score_run = partial(score_chain, progress=not args.no_progress)
    cache = ScoreCache(Path(args.out) / ".cache") if args.out and not args.no_cache else None
    return GridRun(metrics, args.batch_size, Path(args.save_maps) if args.save_maps else None, cache,
                   score_maps, score_run)


def run_eval(args: argparse.Namespace) -> int:
    metrics = [m.strip().lower() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    for metric in metrics or []:
        get_component("metric", metric)
    columns = _columns(args.columns)
    cells, datasets = _plan(args)
    problems = {path: why for d in datasets for path, why in d.data.problems.items()}
    for path, reason in problems.items():
        print(f"not scored: {path}: {reason}", file=sys.stderr)
    print("\n".join(pairing_report(cells, limit=None if args.verbose else 10)), file=sys.stderr)
    run = _run(args, metrics)
    grid = score_grid(cells, run)
    if columns == "paper" and not metric_columns("paper", grid):
        columns = "all"
    print(format_markdown(grid, columns), end="")
    comparisons = _compare(args, datasets, run) if args.compare else []
    unsaved = _report_failures(run, args.verbose)
    if args.out:
        command = shlex.join(["salplug", *args.argv])
        written = write_outputs(grid, args.out, columns=columns, command=command, highlight=args.highlight,
                                comparisons=comparisons)
        cached = sum(1 for r in grid if (r.dataset, r.method) not in run.scored)
        note = f" ({cached} of {len(grid)} rows from {Path(args.out) / '.cache'})" if cached else ""
        print(f"wrote {', '.join(sorted(written))} to {args.out}{note}", file=sys.stderr)
    partial_rows = [r for r in grid if r.partial]
    if (partial_rows or problems) and not args.allow_partial:
        if partial_rows:
            print(f"{len(partial_rows)} of {len(grid)} rows are missing images (marked †); --allow-partial "
                  "accepts them", file=sys.stderr)
        return EXIT_FAILED_INPUTS
    return EXIT_FAILED_INPUTS if unsaved else EXIT_OK


def _compare(args: argparse.Namespace, datasets: list[GridDataset], run: GridRun) -> list[dict]:
    """`--compare A B` on each dataset where both were scored, printed and returned for results.json."""
    a, b = args.compare
    found = []
    for dataset in datasets:
        if (dataset.name, a) not in run.raw or (dataset.name, b) not in run.raw:
            continue
        differences = compare_methods(run.raw[dataset.name, a], run.raw[dataset.name, b])
        lines = format_comparison(a, b, differences)
        print("\n".join(f"{dataset.name}: {line}" if len(datasets) > 1 else line for line in lines.splitlines()))
        found.append({"dataset": dataset.name, "a": a, "b": b,
                      "differences": {m: asdict(d) for m, d in differences.items()}})
    return found


def _report_failures(run: GridRun, verbose: bool) -> bool:
    """Images that failed while scoring (not just absent), and maps scored but not saved; whether any went unsaved."""
    shown: set[str] = set()
    unsaved = False
    for (dataset, name), result in run.raw.items():
        for path, reason in result.failed.items():
            if path not in shown and reason not in MISSING:
                print(f"not scored: {path}: {reason}", file=sys.stderr)
                shown.add(path)
        unsaved |= _report_unsaved(dataset, result, verbose)
    return unsaved


def _report_unsaved(dataset: str, result: MethodScores, verbose: bool) -> bool:
    """Maps scored but not written: one counted line with the first reason, or every one with -v."""
    if not result.unsaved:
        return False
    first, reason = next(iter(result.unsaved.items()))
    listing = " (-v lists them)" if len(result.unsaved) > 1 and not verbose else ""
    print(f"{dataset} / {result.name}: {len(result.unsaved)} of {result.count} maps not saved in "
          f"{Path(first).parent}: {reason}{listing}", file=sys.stderr)
    for path, why in result.unsaved.items() if verbose else ():
        print(f"not saved: {path}: {why}", file=sys.stderr)
    return True
