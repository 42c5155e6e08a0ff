"""The ``salplug`` command: inspect plugins and components, run chains over folders.

Each subcommand is a `Command` in `COMMANDS`: a function that adds its arguments and a
function that runs it, so new subcommands are one table entry. Exit codes: 0 success,
1 when some inputs failed (the others were still written), 2 for usage errors and any
`SalplugError`, printed as one line without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import __version__
from .chain import Chain
from .components import KINDS
from .errors import SalplugError
from .plugins import PluginInfo, get_host
from .runner import run_chain_on_files
from .schema import chain_schema

EXIT_OK, EXIT_FAILED_INPUTS, EXIT_USAGE = 0, 1, 2


class CommandError(SalplugError):
    """A command-line value that cannot be used, such as an unavailable device."""


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, its arguments, and what it does."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _status(info: PluginInfo) -> str:
    return "disabled" if info.disabled else "failed" if info.errors else "ok"


def _add_plugins(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _plugins(args: argparse.Namespace) -> int:
    plugins = sorted(get_host().plugins.values(), key=lambda p: p.name)
    if args.json:
        print(json.dumps([{**asdict(p), "status": _status(p)} for p in plugins], indent=2))
        return EXIT_OK
    if not plugins:
        print("no plugins installed (none in the 'salplug' entry-point group)")
        return EXIT_OK
    rows = [("PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "COMPONENTS")]
    for p in plugins:
        components = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in p.components.items())
        rows.append((p.name, p.distribution, p.version or "-", _status(p), components or "-"))
    print(_table(rows))
    for p in plugins:
        for error in p.errors:
            print(f"\n{p.name}: {error}")
    return EXIT_OK


def _add_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", metavar="KIND", help=f"one of {', '.join(KINDS)}; all kinds when left out")
    parser.add_argument("pattern", nargs="?", metavar="PATTERN", help="glob on component names, e.g. '*crf*'")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _kind_and_pattern(args: argparse.Namespace) -> tuple[list[str], str | None]:
    """KIND may be left out: a lone argument that is not a kind is the pattern."""
    if args.kind is None:
        return list(KINDS), None
    kind = args.kind[:-1] if args.kind.endswith("s") and args.kind[:-1] in KINDS else args.kind
    if kind in KINDS:
        return [kind], args.pattern
    if args.pattern is None:
        return list(KINDS), args.kind
    raise CommandError(f"list: expected KIND to be one of {', '.join(KINDS)}, got {args.kind!r}")


def _list(args: argparse.Namespace) -> int:
    kinds, pattern = _kind_and_pattern(args)
    registries = get_host().registries
    rows = []
    for kind in kinds:
        for name in registries[kind].names(pattern):
            entry = registries[kind].entries[name]
            rows.append({"kind": kind, "name": name, "distribution": entry.distribution, "summary": entry.summary})
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(_table([("KIND", "NAME", "DISTRIBUTION", "SUMMARY"), *(tuple(r.values()) for r in rows)]))
    else:
        what, hint = (kinds[0], "") if len(kinds) == 1 else ("component", f" (KIND is one of {', '.join(KINDS)})")
        print(f"no {what} matches {pattern or '*'!r}{hint}", file=sys.stderr)
    return EXIT_OK


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chain", required=True, metavar="SPEC", help="chain spec, a .yaml/.yml or .json file")
    parser.add_argument("inputs", nargs="+", metavar="INPUTS", help="image files or folders (walked recursively)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="folder for the maps, OUT/<key>.png")
    parser.add_argument("--batch-size", type=_positive, default=8, metavar="N", help="images per batch (default 8)")
    parser.add_argument("--device", metavar="DEV", help="torch device, e.g. cpu or cuda:0 (default: cuda if available)")
    parser.add_argument("--overwrite", action="store_true", help="recompute maps that already exist")
    parser.add_argument("--save-steps", action="store_true", help="also write each step's map to OUT/steps/<step>/")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _run(args: argparse.Namespace) -> int:
    chain = Chain.from_spec(args.chain)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chain.to(torch.device(device))
    except (RuntimeError, AssertionError) as err:
        raise CommandError(f"--device: cannot use {device!r}: {err}") from None
    report = run_chain_on_files(
        chain,
        args.inputs,
        args.output,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
        save_steps=args.save_steps,
        progress=not args.no_progress,
    )
    print(f"{report.summary()} -> {args.output}")
    for path, reason in report.failed.items():
        print(f"failed: {path}: {reason}", file=sys.stderr)
    return EXIT_FAILED_INPUTS if report.failed else EXIT_OK


def _add_schema(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE instead of printing it")


def _schema(args: argparse.Namespace) -> int:
    text = json.dumps(chain_schema(), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "plugins": Command("show installed plugins, their components and load errors", _add_plugins, _plugins),
    "list": Command("list components by kind, optionally filtered by a glob", _add_list, _list),
    "run": Command("run a chain spec over image files and folders, writing PNG maps", _add_run, _run),
    "schema": Command("print the JSON Schema of chain specs for the installed components", _add_schema, _schema),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salplug", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"salplug {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("salplug: error: expected a command", file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command].run(args)
    except (SalplugError, OSError) as err:
        print(f"salplug: error: {err}", file=sys.stderr)
        return EXIT_USAGE
