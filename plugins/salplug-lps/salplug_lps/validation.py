"""The trainer's held-out images as a dataset folder of links, for ``salplug eval`` (duts-side validation).

    salplug lps validation --data "$SALPLUG_DATA/duts-tr" --hold-out 300 \
        --priors oof=runs/baseline/duts-tr-oof -o runs/lps/duts-val

The stems are `salplug.data.hold_out`'s, the ones `salplug train lps` never trains on with
the same `hold_out`, so choices made on this folder never look at sod-dev. `--fold K` keeps
the held-out images of fold K only (`salplug.data.held_fold`, two folds): the ones a fold-K
baseline backbone never trained on either.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from salplug.data import FolderDataset, held_fold, hold_out
from salplug.host import view_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hold-out", type=int, default=300, help="the trainer's hold_out (default 300)")
    parser.add_argument("--fold", type=int, default=None, help="keep only the held-out images of this fold of two")


def held_out(args: argparse.Namespace) -> tuple[FolderDataset, list[str]]:
    data = FolderDataset(Path(args.data), masks=True)
    _, stems = hold_out(data.keys, args.hold_out)
    if args.fold is not None:
        fold = held_fold(args.data, 2, args.fold)
        stems = [s for s in stems if s in fold]
    return data, stems


COMMAND = view_command("validation", "link the images the trainer holds out into a dataset folder for salplug eval",
                       add_arguments=add_arguments, select=held_out, what="held-out images of {data}")
main = COMMAND.main
"""Run the command from Python: ``main(["--data", DIR, "-o", OUT])``."""
