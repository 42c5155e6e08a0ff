"""The conformance kit as a pytest plugin: ``pytest --salplug-conformance NAME`` checks an installed plugin.

NAME is a plugin (entry-point) or distribution name; every component and trainer it
registers is built with its `example_config` and run through each check of
`salplug.testing.parametrize_with_checks`, one test per (component, check), with no test
file to write. Registered in the ``pytest11`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path

OPTION = "--salplug-conformance"
SUITE = Path(__file__).with_name("testing") / "conformance_suite.py"


def pytest_addoption(parser) -> None:
    parser.addoption(OPTION, action="append", default=[], metavar="NAME", dest="salplug_conformance",
                     help="check every component of this installed salplug plugin or distribution (repeatable)")


def pytest_load_initial_conftests(early_config, parser, args) -> None:
    """With the option given, collect the kit's suite beside whatever else was asked for."""
    if any(arg == OPTION or arg.startswith(f"{OPTION}=") for arg in args):
        args.append(str(SUITE))
