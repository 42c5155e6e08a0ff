"""Out-of-fold maps: a map for every image of a dataset, each from a fold model that never trained on it.

    salplug baseline out-of-fold --data "$SALPLUG_DATA/duts-tr" -o runs/baseline/duts-tr-oof

Fold model k (checkpoint ``fold<k>``, or a path given with ``--checkpoints``) trained on
every fold but k; its card records the rule, and this command maps exactly fold k's
images with it, after checking that the card's fold, fold count and subset agree. The
maps then serve label-free trainers as a detector's maps with realistic errors, like the
PiCANet maps the LDPS paper trains on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Collection
from pathlib import Path

import torch

from salplug.pipeline import Chain, ManifestError, RunReport, run_chain_on_files
from salplug.data import FolderDataset, atomic_write, split, subset
from salplug.errors import CheckpointError
from salplug.host import Command

from .prior import Baseline

RECORD = "out-of-fold.json"


def fold_keys(data: FolderDataset, prior: Baseline, fold: int, folds: int, source: str) -> list[str]:
    """The stems fold model `fold` did not train on, checked against its card."""
    recorded = prior.card.get("data", {})
    if (recorded.get("fold"), recorded.get("folds")) != (fold, folds):
        raise CheckpointError(f"{source}: expected a model trained without fold {fold} of {folds}, its card says "
                              f"fold={recorded.get('fold')!r}, folds={recorded.get('folds')!r}")
    return split(subset(data.keys, recorded.get("subset")), folds, fold, "held")


def check_record(out: Path, record: dict, overwrite: bool) -> None:
    """Refuse to add maps to a folder written by other fold models (their cards' commands differ)."""
    path = out / RECORD
    if overwrite or not path.is_file():
        return
    if json.loads(path.read_text(encoding="utf-8")) != record:
        raise ManifestError(f"{out} holds out-of-fold maps of other fold models (see {path}); "
                            "use --overwrite to replace them, or write to another folder")


def out_of_fold(data_root: str | Path, out: str | Path, checkpoints: list[str], *, batch_size: int = 16,
                device: str = "cpu", overwrite: bool = False, progress: bool = True,
                only: Collection[str] | None = None) -> RunReport:
    """Write ``out/<stem>.png`` for every image of every fold (or of the stems in `only`); returns the merged report.

    The folder gets one record of every fold model (``out-of-fold.json``: source, fold, the
    command that trained it) in place of a single chain's manifest.
    """
    out = Path(out)
    data = FolderDataset(Path(data_root))
    report = RunReport(failed=dict(data.problems))
    priors = [Baseline(checkpoint=source) for source in checkpoints]
    record = {"data": str(data_root), "folds": [{"fold": k, "checkpoint": str(source), "command": prior.card.get("command")}
                                                for k, (source, prior) in enumerate(zip(checkpoints, priors))]}
    check_record(out, record, overwrite)
    with atomic_write(out / RECORD) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    for fold, (source, prior) in enumerate(zip(checkpoints, priors)):
        keys = [k for k in fold_keys(data, prior, fold, len(checkpoints), source) if only is None or k in only]
        chain = Chain([prior]).to(device)
        part = run_chain_on_files(chain, [data.images[k] for k in keys], out, batch_size=batch_size,
                                  overwrite=overwrite, progress=progress, manifest=False)
        report.written += part.written
        report.skipped += part.skipped
        report.failed.update(part.failed)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset folder with images/ (DUTS-TR)")
    parser.add_argument("-o", "--out", required=True, help="folder for the maps (<stem>.png)")
    parser.add_argument("--checkpoints", nargs="+", default=["fold0", "fold1"],
                        help="fold models in fold order: shipped tags or paths (default: fold0 fold1)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--overwrite", action="store_true", help="rewrite maps that exist")
    parser.add_argument("--stems", help="text file of stems, one per line: map only these (e.g. a validation set; "
                        "a later run without it adds the rest)")


def run(args: argparse.Namespace) -> int:
    started = time.time()
    only = None if args.stems is None else set(Path(args.stems).read_text(encoding="utf-8").split())
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    report = out_of_fold(args.data, args.out, args.checkpoints, batch_size=args.batch_size, device=device,
                         overwrite=args.overwrite, only=only)
    for path, reason in sorted(report.failed.items()):
        print(f"failed: {path}: {reason}", file=sys.stderr)
    print(f"{report.summary()} in {time.time() - started:.0f}s")
    return 1 if report.failed else 0


COMMAND = Command("out-of-fold", "map every image of a dataset with the fold model that never trained on it",
                  add_arguments, run)
