"""What several commands share: exit codes, the error for unusable values, and the options of
`run` and `eval` (engine, ``--set``, the chain on its device)."""

from __future__ import annotations

import argparse

import torch

from salplug.errors import SalplugError
from salplug.ops import require_computing
from salplug.pipeline._chain import Chain
from salplug.pipeline._spec import load_spec, parse_settings, with_settings

EXIT_OK, EXIT_FAILED_INPUTS, EXIT_USAGE = 0, 1, 2


class CommandError(SalplugError):
    """A command-line value that cannot be used, such as an unavailable device."""


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_engine(parser: argparse.ArgumentParser) -> None:
    """`--engine ray` and its options, shared by `run` and `eval`."""
    group = parser.add_argument_group("distributed (needs pip install 'salplug[ray]')")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: this process (default); ray: a Ray cluster's workers")
    group.add_argument("--address", metavar="ADDR",
                       help="Ray cluster to join: auto or HOST:PORT (default: start a local one)")
    group.add_argument("--workers", type=positive, default=1, metavar="N", help="Ray actors, each with its own chain (default 1)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                       help="GPUs per Ray actor; the chain runs on cuda when > 0 (default 0)")


def ray_options(args: argparse.Namespace) -> dict:
    if args.engine != "ray":
        for flag, value, default in (("--address", args.address, None), ("--workers", args.workers, 1),
                                     ("--gpus-per-worker", args.gpus_per_worker, 0.0)):
            if value != default:
                raise CommandError(f"{flag}: only used with --engine ray, got --engine {args.engine}")
        return {}
    if args.gpus_per_worker < 0:
        raise CommandError(f"--gpus-per-worker: expected 0 or more, got {args.gpus_per_worker}")
    if args.device:
        raise CommandError("--device: not used with --engine ray (each worker uses cuda when --gpus-per-worker > 0)")
    return {"address": args.address, "workers": args.workers, "gpus_per_worker": args.gpus_per_worker}


def add_settings(parser: argparse.ArgumentParser, metavar: str, help: str) -> None:
    """The repeatable ``--set KEY=VALUE`` option of `run`, `eval` and `train`."""
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar=metavar,
                        help=f"{help}; one per --set, repeat it for more")


def add_chain_settings(parser: argparse.ArgumentParser) -> None:
    add_settings(
        parser,
        "STEP.FIELD=VALUE",
        "override one step's config field (VALUE is read as YAML), e.g. lps.checkpoint=/tmp/lps.pt",
    )


def chain_on_device(spec: str, device: str | None, settings: list[str]) -> Chain:
    """The chain of the spec file with the ``--set`` overrides: parsed once, built once, on `device`.

    A device that cannot compute (``meta``) or does not parse is refused before the chain is built.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except RuntimeError as err:
        raise CommandError(f"--device: cannot use {device!r}: {err}") from None
    try:
        require_computing(target, device)
    except ValueError as err:
        raise CommandError(f"--device: {err}") from None
    chain = Chain.from_spec(with_settings(load_spec(spec), parse_settings(settings, "STEP.FIELD=VALUE")))
    try:
        return chain.to(target)
    except (RuntimeError, AssertionError) as err:
        raise CommandError(f"--device: cannot use {device!r}: {err}") from None
