"""The images a pool left out, as a dataset folder of links, for duts-side choices (never sod-dev).

    salplug mijr validation --data "$SALPLUG_DATA/duts-tr" --maps runs/baseline/duts-tr-oof \
        --pool-fold 0 --priors oof=runs/baseline/duts-tr-oof -o runs/mijr/duts-val-fold0

With the trainer's `pool_size`, `pool_fold` and `maps`, the stems are those of the same
candidates that `salplug train mijr` did not put in the pool: targets the pool cannot retrieve
themselves from. With `--pool-fold K` they are also images a fold-K baseline backbone never
trained on, as the pool's are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from salplug.data import FolderDataset, subset
from salplug.host import view_command

from .train import pool_stems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--maps", required=True, help="the trainer's base maps (its `maps`)")
    parser.add_argument("--pool-size", type=int, default=5000, help="the trainer's pool_size (default 5000)")
    parser.add_argument("--pool-fold", type=int, default=None, help="the trainer's pool_fold")
    parser.add_argument("--pool-folds", type=int, default=2, help="the trainer's pool_folds (default 2)")
    parser.add_argument("--count", type=int, default=None, help="keep this many of the left-out images, evenly spaced")


def left_out(args: argparse.Namespace) -> tuple[FolderDataset, list[str]]:
    data = FolderDataset(Path(args.data), masks=True, priors_dir=Path(args.maps))
    _, left = pool_stems(data, args.pool_size, args.pool_fold, args.pool_folds)
    return data, subset(left, args.count)


COMMAND = view_command("validation", "link the images the pool left out into a dataset folder for salplug eval",
                       add_arguments=add_arguments, select=left_out, what="images of {data} left out of the pool")
