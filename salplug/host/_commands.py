"""Commands plugins add to the command line: ``salplug PLUGIN TOOL``.

A plugin's side tools (validation views, out-of-fold maps, analyses) are registered like its
components, so every tool is found under one command, listed by ``salplug plugins`` and
given ``--help``, instead of each being a ``python -m`` module to remember.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from salplug.data._datasets import FolderDataset, link_view
from salplug.errors import SalplugError
from salplug.host._registry import NAME_PATTERN, RegistrationError


@dataclass(frozen=True)
class Command:
    """A plugin's tool: its name under ``salplug PLUGIN``, a help line, its arguments and what it does.

    `add_arguments(parser)` adds argparse arguments; `run(args)` does the work and returns
    the exit code (None means 0). Errors deriving from `salplug.SalplugError` become one
    line and exit code 2 on the command line, as with the core's commands.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]

    def parser(self, prog: str | None = None) -> argparse.ArgumentParser:
        """A stand-alone parser of this command's arguments."""
        parser = argparse.ArgumentParser(prog=prog or self.name, description=self.help)
        self.add_arguments(parser)
        return parser

    def main(self, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
        """Parse `argv` and run: the command from Python (notebooks, tests) without the ``salplug`` parser."""
        code = self.run(self.parser(prog).parse_args(argv))
        return 0 if code is None else code


class CommandRegistrar:
    """The `register` callable of ``salplug_register_commands``, bound to one plugin."""

    def __init__(self, plugin: str):
        self.plugin = plugin
        self.commands: dict[str, Command] = {}

    def __call__(self, command: Command) -> Command:
        if not isinstance(command, Command):
            raise RegistrationError(f"register: expected a salplug.host.Command, got {command!r}")
        if not NAME_PATTERN.match(command.name):
            raise RegistrationError(f"register: a command name must be lower-case letters, digits, '.', '_' or '-', "
                                    f"starting with a letter or digit; got {command.name!r}")
        if command.name in self.commands:
            raise RegistrationError(f"register: plugin {self.plugin!r} registers two commands named {command.name!r}")
        self.commands[command.name] = command
        return command


def _named_folders(items: Sequence[str]) -> dict[str, Path]:
    pairs = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not (sep and name and folder):
            raise SalplugError(f"--priors: expected NAME=FOLDER, got {item!r}")
        pairs[name] = Path(folder)
    return pairs


def view_command(
    name: str,
    help: str,
    *,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    select: Callable[[argparse.Namespace], tuple[FolderDataset, list[str]]],
    what: str,
) -> Command:
    """A command that links chosen images of a training dataset into a dataset folder for ``salplug eval``.

    Trainers hold images out of training; choices made on exactly those images never look
    at the test data. `select(args)` reads the dataset and returns it with the chosen stems;
    the command adds ``--data``, ``--priors NAME=FOLDER ...`` and ``-o``, links images,
    masks and priors with `salplug.data.link_view` and prints ``linked N <what> into OUT``
    (`what` may name ``{data}``).
    """

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--data", required=True, help="the trainer's dataset folder (images/, masks/)")
        add_arguments(parser)
        parser.add_argument("--priors", nargs="*", default=[], metavar="NAME=FOLDER", help="prior maps to link as priors/NAME")
        parser.add_argument("-o", "--out", required=True, help="folder to write the links to")

    def run(args: argparse.Namespace) -> int:
        priors = _named_folders(args.priors)
        data, stems = select(args)
        link_view(data, stems, Path(args.out), priors)
        print(f"linked {len(stems)} {what.format(data=args.data)} into {args.out}")
        return 0

    return Command(name, help, arguments, run)
