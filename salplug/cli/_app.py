"""The ``salplug`` command: inspect plugins and components, run chains, evaluate maps, train.

Each subcommand is a `Command` in `COMMANDS`: a function that adds its arguments and a
function that runs it, so new subcommands are one table entry. Exit codes: 0 success,
1 when some inputs failed (the others were still written), 2 for usage errors and any
`SalplugError`, printed as one line without a traceback, 130 when stopped by Ctrl-C
(after a summary of what was written).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Sequence
from typing import Any
from dataclasses import asdict, dataclass
from pathlib import Path

from salplug import __version__
from salplug.cli._eval import add_eval, run_eval
from salplug.cli._options import (
    EXIT_FAILED_INPUTS,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_chain_settings,
    add_engine,
    add_settings,
    chain_on_device,
    positive,
    ray_options,
)
from salplug.components._base import KINDS
from salplug.data._io import MAX_IMAGE_PIXELS
from salplug.train import _parallel as data_parallel
from salplug.errors import SalplugError, did_you_mean
from salplug.metrics._diagnosis import per_image, summary as diagnosis_summary
from salplug.host._factory import build, get_component
from salplug.host._manager import PluginInfo, get_host
from salplug.metrics._gridspec import grid_schema
from salplug.pipeline._runner import run_chain_on_files
from salplug.pipeline._batching import BATCH_PIXELS
from salplug.pipeline._schema import chain_schema
from salplug.train._loop import Interrupted, LoopConfig, stored_settings
from salplug.pipeline._spec import parse_settings, read_document

EXIT_NO_MATCH = 1
"""`list` found nothing, as grep exits when no line matches."""
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as shells report a command stopped by Ctrl-C."""


class _Parser(argparse.ArgumentParser):
    """A parser whose unknown flag is an error naming the closest flag of the same command.

    Subcommands parse with the parser class of their parent, so `salplug`, every subcommand
    and every plugin tool report a misspelt flag against their own flags. Unique prefixes of
    a flag still stand for it, as argparse reads them.
    """

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        before_dashes = extras[:extras.index("--")] if "--" in extras else extras
        unknown = next((arg.partition("=")[0] for arg in before_dashes if _looks_like_flag(arg)), None)
        if unknown is not None:
            flags = [flag for action in self._actions if action.help != argparse.SUPPRESS
                     for flag in action.option_strings]
            self.error(f"unknown flag {unknown}{did_you_mean(unknown, flags)}")
        return namespace, extras


def _looks_like_flag(arg: str) -> bool:
    """``-o`` and ``--chain=x`` are flags; ``-`` and negative numbers are not."""
    return arg.startswith("-") and arg.lstrip("-")[:1].isalpha()


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
    return "disabled" if info.disabled else "failed" if info.errors else "conflict" if info.conflicts else "ok"


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
        listed = [*(f"{kind}: {', '.join(names)}" for kind, names in p.components.items()),
                  *([f"command: {', '.join(p.commands)}"] if p.commands else [])]
        components = "; ".join(listed)
        rows.append((p.name, p.distribution, p.version or "-", _status(p), components or "-"))
    print(_table(rows))
    for p in plugins:
        for problem in p.errors + p.conflicts:
            print(f"\n{p.name}: {problem}")
    return EXIT_OK


def _add_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", metavar="KIND",
                        help=f"one of {', '.join(KINDS)}, or chain (the named chains plugins ship); all kinds when left out")
    parser.add_argument("pattern", nargs="?", metavar="PATTERN", help="glob on component names, e.g. '*crf*'")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _singular(kind: str) -> str:
    """``refiners`` means ``refiner``: the plural reads naturally on a command line."""
    return kind[:-1] if kind.endswith("s") and kind[:-1] in KINDS else kind


def _kind_and_pattern(args: argparse.Namespace) -> tuple[list[str], str | None]:
    """KIND may be left out: a lone argument that is not a kind is the pattern."""
    if args.kind is None:
        return list(KINDS), None
    kind = _singular(args.kind)
    if kind in KINDS:
        return [kind], args.pattern
    if args.pattern is None:
        return list(KINDS), args.kind
    raise CommandError(f"list: expected KIND to be one of {', '.join(KINDS)}, got {args.kind!r}")


def _list(args: argparse.Namespace) -> int:
    if args.kind in ("chain", "chains"):
        return _list_chains(args)
    kinds, pattern = _kind_and_pattern(args)
    registries = get_host().registries
    rows = []
    for kind in kinds:
        for name in registries[kind].names(pattern):
            entry, clash = registries[kind].entries[name], registries[kind].conflicts.get(name)
            summary = (f"CONFLICT: registered by both {clash.first!r} and {clash.second!r}; neither builds"
                       if clash else entry.summary)
            distribution = f"{clash.first}, {clash.second}" if clash else entry.distribution
            rows.append({"kind": kind, "name": name, "distribution": distribution, "summary": summary})
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(_table([("KIND", "NAME", "DISTRIBUTION", "SUMMARY"), *(tuple(r.values()) for r in rows)]))
    else:
        what, hint = (kinds[0], "") if len(kinds) == 1 else ("component", f" (KIND is one of {', '.join(KINDS)})")
        print(f"no {what} matches {pattern or '*'!r}{hint}", file=sys.stderr)
        return EXIT_NO_MATCH
    return EXIT_OK


def _list_chains(args: argparse.Namespace) -> int:
    chains = get_host().chains
    rows = [{"name": e.name, "default": e.default, "distribution": e.distribution, "summary": e.summary,
             "scores": e.scores} for e in map(chains.get, chains.names(args.pattern))]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(_table([("CHAIN", "DISTRIBUTION", "SUMMARY"),
                      *((r["name"] + " (default)" * r["default"], r["distribution"], r["summary"]) for r in rows)]))
        scored = [f"{r['name']}: {r['scores']}" for r in rows if r["scores"]]
        if scored:
            print("\n" + "\n".join(scored))
    else:
        print(f"no chain matches {args.pattern or '*'!r}", file=sys.stderr)
        return EXIT_NO_MATCH
    return EXIT_OK


def _add_show(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", metavar="KIND", help=f"one of {', '.join(KINDS)}")
    parser.add_argument("name", metavar="NAME", help="a registered component's name (salplug list KIND shows them)")


def _show(args: argparse.Namespace) -> int:
    kind = _singular(args.kind)
    if kind not in KINDS:
        raise CommandError(f"show: expected KIND to be one of {', '.join(KINDS)}, got {args.kind!r}")
    entry = get_host().registries[kind].get(args.name)
    print(f"{kind} {args.name} ({entry.distribution}): {entry.summary}\n")
    print(_fields(entry.cls))
    print(f"\nset a field in a chain spec (config: {{FIELD: VALUE}}) or with --set {args.name}.FIELD=VALUE")
    return EXIT_OK


def _add_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chain", metavar="CHAIN",
                        help="a named chain (salplug list chain) or a spec file (.yaml/.yml/.json); "
                             "default: the installed default chain")
    parser.add_argument("inputs", nargs="+", metavar="INPUTS", help="image files or folders (walked recursively)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="folder for the maps, OUT/<key>.png")
    parser.add_argument("--batch-size", type=positive, default=8, metavar="N", help="images per batch (default 8)")
    parser.add_argument("--max-batch-pixels", type=positive, default=BATCH_PIXELS, metavar="N",
                        help=f"pixels per batch at most, so large photos go in smaller batches; a larger photo "
                             f"goes alone (default {BATCH_PIXELS}, suited to 8 GB of memory)")
    parser.add_argument("--max-image-pixels", type=positive, default=MAX_IMAGE_PIXELS, metavar="N",
                        help=f"larger photos are reported as failed, not decoded (default {MAX_IMAGE_PIXELS}, "
                             "a 30000×5000 panorama)")
    parser.add_argument("--device", metavar="DEV", help="torch device, e.g. cpu or cuda:0 (default: cuda if available)")
    parser.add_argument("--overwrite", action="store_true", help="recompute maps that already exist")
    parser.add_argument("--save-steps", action="store_true", help="also write each step's map to OUT/steps/<step>/")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_engine(parser)
    add_chain_settings(parser)


def _default_chain() -> str:
    default = get_host().chains.default
    if default is None:
        raise CommandError("run: no --chain given and no installed plugin ships a default chain; "
                           "name one from `salplug list chain` or a spec file")
    return default.name


def _run(args: argparse.Namespace) -> int:
    args.chain = args.chain or _default_chain()
    options = ray_options(args)
    if options:
        from salplug.distributed._ray_run import run_chain_on_files_ray

        report = run_chain_on_files_ray(
            chain_on_device(args.chain, "cpu", args.settings), args.inputs, args.output, batch_size=args.batch_size,
            max_batch_pixels=args.max_batch_pixels, max_image_pixels=args.max_image_pixels, overwrite=args.overwrite,
            save_steps=args.save_steps, progress=not args.no_progress, **options,
        )
    else:
        if "://" in args.output:
            raise CommandError(f"-o {args.output}: a filesystem URI needs --engine ray (the local runner writes local paths)")
        chain = chain_on_device(args.chain, args.device, args.settings)
        report = run_chain_on_files(
            chain,
            args.inputs,
            args.output,
            batch_size=args.batch_size,
            max_batch_pixels=args.max_batch_pixels,
            max_image_pixels=args.max_image_pixels,
            overwrite=args.overwrite,
            save_steps=args.save_steps,
            progress=not args.no_progress,
        )
    print(f"{report.summary()} -> {args.output}")
    for path, reason in report.failed.items():
        print(f"failed: {path}: {reason}", file=sys.stderr)
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED_INPUTS if report.failed else EXIT_OK


SCHEMAS = {"chain": chain_schema, "grid": grid_schema}
"""What `salplug schema` describes: chain specs (``--chain``), grid files (``salplug eval --grid``)."""


def _add_schema(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", nargs="?", choices=tuple(SCHEMAS), default="chain",
                        help="chain: chain specs, for the installed components (default); grid: eval's grid files")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE instead of printing it")


def _schema(args: argparse.Namespace) -> int:
    text = json.dumps(SCHEMAS[args.what](), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _add_train(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="a registered trainer; all trainers when left out")
    parser.add_argument("--config", metavar="FILE", help="YAML or JSON mapping of the trainer's config fields")
    add_settings(parser, "FIELD=VALUE", "set one field (VALUE is read as YAML: 3, 0.1, [a, b]); wins over --config")
    parser.add_argument("--show", action="store_true",
                        help="print the trainer's fields and defaults (with --config or --set: the values a run "
                        "would take, checked), train nothing")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from the state file beside its `out` (same as --set resume=true)")
    parser.add_argument("--nproc", type=positive, default=1, metavar="N",
                        help="data-parallel processes on this machine, launched with torchrun (default 1); "
                        "the global batch stays batch_size; for several machines run torchrun yourself (README)")


def _type_name(annotation: Any) -> str:
    """A field's type as its source spells it: ``int``, ``float | None``, ``Literal['a', 'b']``."""
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    return text.replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")


def _fields(cls: type, config: Any = None) -> str:
    """A component's or trainer's fields for a terminal: name, type and default (or `config`'s value) on one line,
    the description beneath."""
    width = max(40, shutil.get_terminal_size((100, 24)).columns)
    lines = []
    for field, info in cls.Config.model_fields.items():
        if config is not None:
            default = json.dumps(getattr(config, field), default=str)
        elif info.is_required():
            default = "(required)"
        else:
            default = json.dumps(info.get_default(call_default_factory=True), default=str)
        head = f"{field}: {_type_name(info.annotation)} = {default}"
        lines.append(head if len(head) <= width else textwrap.shorten(head, width, placeholder=" ..."))
        lines += textwrap.wrap(info.description or "(no description)", width, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)


def _train_options(args: argparse.Namespace) -> dict:
    options: dict = {}
    if args.config:
        loaded = read_document(args.config, "train config", CommandError)
        if not isinstance(loaded, dict):
            raise CommandError(f"train: expected {args.config} to hold a mapping of fields, got {type(loaded).__name__}")
        options.update(loaded)
    options.update(parse_settings(args.settings, "FIELD=VALUE"))
    if args.resume:
        options["resume"] = True
    return options


def _train(args: argparse.Namespace) -> int:
    if args.name is None:
        registry = get_host().registries["trainer"]
        rows = [(name, registry.entries[name].distribution, registry.entries[name].summary) for name in registry.names()]
        if rows:
            print(_table([("TRAINER", "DISTRIBUTION", "SUMMARY"), *rows]))
            print("\nsalplug train NAME --show: its fields; salplug train NAME --set FIELD=VALUE ...: run it")
        else:
            print("no trainers installed (plugins register them with salplug_register_trainers)")
        return EXIT_OK
    cls = get_component("trainer", args.name)
    if args.show and not (args.config or args.settings):
        print(_fields(cls))
        return EXIT_OK
    options = _train_options(args)
    if args.show:
        print(_fields(cls, cls(cls.make_config(options), config_file=args.config).config))
        return EXIT_OK
    if args.resume and "resume" not in cls.Config.model_fields:
        raise CommandError(f"train {args.name}: --resume needs a trainer that runs on salplug.train._loop "
                           f"or has its own 'resume' field, this one has none")
    if (args.nproc > 1 or data_parallel.launched_by_torchrun()) and not issubclass(cls.Config, LoopConfig):
        raise CommandError(f"train {args.name}: --nproc needs a trainer that runs on salplug.train._loop, "
                           f"this one does not")
    if options.get("resume") and issubclass(cls.Config, LoopConfig):
        out = options.get("out", cls.Config.model_fields["out"].default)
        options = {**stored_settings(out), **options}
    trainer = cls(cls.make_config(options), config_file=args.config)
    trainer.check_inputs()
    if args.nproc > 1 and not data_parallel.launched_by_torchrun():
        return _torchrun(args)
    group = data_parallel.start(trainer.config.device) if data_parallel.launched_by_torchrun() else data_parallel.SINGLE
    if group.leader:
        print(f"training {args.name}: {trainer.command()}", flush=True)
    try:
        checkpoint = trainer.run()
    except Interrupted as stop:
        data_parallel.finish(wait=False)
        if group.leader:
            print(f"salplug: train {args.name}: {stop.result.reason}; wrote {stop.result.checkpoint} and its run state, "
                  f"continue with --resume", file=sys.stderr)
        return 128 + stop.signum
    except BaseException:
        data_parallel.finish(wait=False)
        raise
    data_parallel.finish()
    if group.leader:
        print(f"wrote {checkpoint}")
    return EXIT_OK


def _torchrun(args: argparse.Namespace) -> int:
    """The same `salplug train` command in `--nproc` processes on this machine, started by torchrun."""
    argv, skip = [], False
    for word in args.argv:
        if skip or word.startswith("--nproc="):
            skip = False
            continue
        if word == "--nproc":
            skip = True
            continue
        argv.append(word)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
               "-m", "salplug", *argv]
    print(f"salplug: launching {args.nproc} processes: {shlex.join(command)}", flush=True)
    return subprocess.run(command, check=False).returncode


def _add_diagnose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refiner", required=True, help="a registered refiner's name")
    parser.add_argument("--dataset", required=True, type=Path, help="dataset folder: images/, masks/, priors/NAME")
    parser.add_argument("--prior", required=True, help="the prior folder's name under priors/")
    add_settings(parser, "FIELD=VALUE", "one of the refiner's config fields (VALUE is read as YAML)")
    parser.add_argument("--worst", type=positive, default=10, help="images listed, worst change first (default 10)")


def _diagnose(args: argparse.Namespace) -> int:
    refiner = build("refiner", args.refiner, **parse_settings(args.settings, "FIELD=VALUE"))
    print(diagnosis_summary(per_image(refiner, args.dataset, args.prior), args.worst))
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "plugins": Command("show installed plugins, their components and load errors", _add_plugins, _plugins),
    "list": Command("list components by kind, optionally filtered by a glob", _add_list, _list),
    "show": Command("show one component's options: type, default and description of each", _add_show, _show),
    "run": Command("run a chain spec over image files and folders, writing PNG maps", _add_run, _run),
    "schema": Command("print the JSON Schema of chain specs (or of eval's grid files)", _add_schema, _schema),
    "eval": Command("score maps, priors or chains on datasets with the SOD metrics: a datasets × methods grid",
                    add_eval, run_eval),
    "train": Command("run a registered trainer, writing a checkpoint", _add_train, _train),
    "diagnose": Command("per image, where a refiner's S-measure change on a dataset comes from", _add_diagnose, _diagnose),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="salplug", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"salplug {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    _add_plugin_tools(sub)
    return parser


def _add_plugin_tools(sub: argparse._SubParsersAction) -> None:
    """``salplug PLUGIN TOOL`` for each plugin that registers commands (``salplug_register_commands``)."""
    host = get_host()
    for plugin, tools in sorted(host.commands.items()):
        if plugin in COMMANDS:
            note = f"its commands ({', '.join(tools)}) are left out: {plugin!r} is a salplug command"
            if note not in host.plugins[plugin].errors:
                host.plugins[plugin].errors.append(note)
            continue
        summary = f"tools of plugin {plugin!r}: {', '.join(tools)}"
        chooser = sub.add_parser(plugin, help=summary, description=summary).add_subparsers(
            dest="plugin_tool", metavar="TOOL", required=True)
        for name, tool in tools.items():
            tool.add_arguments(chooser.add_parser(name, help=tool.help, description=tool.help))


def _plugin_tool(args: argparse.Namespace) -> int:
    code = get_host().commands[args.command][args.plugin_tool].run(args)
    return EXIT_OK if code is None else code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        args.argv = argv
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("salplug: error: expected a command", file=sys.stderr)
        return EXIT_USAGE
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return (COMMANDS[args.command].run if args.command in COMMANDS else _plugin_tool)(args)
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        print("salplug: interrupted; files written so far are complete, run again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (SalplugError, OSError) as err:
        print(f"salplug: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line, like errors: the reader needs the message, not our source line."""
    print(f"salplug: warning: {message}", file=sys.stderr)


def _quiet_stdout() -> None:
    """The reader closed the pipe (``salplug plugins | head``): send what is left nowhere, as Unix tools end."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
