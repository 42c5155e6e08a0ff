"""The images a pool left out, as a dataset folder of links, for duts-side choices (never sod-dev).

    python -m salplug_mijr.validation --data ../shared/data/duts-tr --maps runs/baseline/duts-tr-oof \
        --pool-fold 0 --priors oof=runs/baseline/duts-tr-oof -o runs/mijr/duts-val-fold0

With the trainer's `pool_size`, `pool_fold` and `maps`, the stems are those of the same
candidates that `salplug train mijr` did not put in the pool: targets the pool cannot retrieve
themselves from. With `--pool-fold K` they are also images a fold-K baseline backbone never
trained on, as the pool's are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from salplug.data import FolderDataset, link_view, subset

from .train import pool_stems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salplug_mijr.validation", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the trainer's dataset folder (images/, masks/)")
    parser.add_argument("--maps", required=True, help="the trainer's base maps (its `maps`)")
    parser.add_argument("--pool-size", type=int, default=5000, help="the trainer's pool_size (default 5000)")
    parser.add_argument("--pool-fold", type=int, default=None, help="the trainer's pool_fold")
    parser.add_argument("--pool-folds", type=int, default=2, help="the trainer's pool_folds (default 2)")
    parser.add_argument("--count", type=int, default=None, help="keep this many of the left-out images, evenly spaced")
    parser.add_argument("--priors", nargs="*", default=[], metavar="NAME=FOLDER", help="prior maps to link as priors/NAME")
    parser.add_argument("-o", "--out", required=True, help="folder to write the links to")
    args = parser.parse_args(argv)
    data = FolderDataset(Path(args.data), masks=True, priors_dir=Path(args.maps))
    _, left = pool_stems(data, args.pool_size, args.pool_fold, args.pool_folds)
    stems = subset(left, args.count)
    priors = {name: Path(folder) for name, folder in (item.split("=", 1) for item in args.priors)}
    link_view(data, stems, Path(args.out), priors)
    print(f"linked {len(stems)} images of {args.data} left out of the pool into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
