"""The trainer's held-out images as a dataset folder of links, for ``salplug eval`` (duts-side validation).

    python -m salplug_lps.validation --data ../shared/data/duts-tr --hold-out 300 \
        --priors oof=runs/baseline/duts-tr-oof -o runs/lps/duts-val

The stems are `salplug.data._datasets.hold_out`'s, the ones `salplug train lps` never trains
on with the same `hold_out`, so choices made on this folder never look at sod-dev.
`--fold K` keeps the held-out images of fold K only (`salplug.data._datasets.held_fold`, two folds):
the ones a fold-K baseline backbone never trained on either.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from salplug.data import FolderDataset, held_fold, hold_out, link_view



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salplug_lps.validation", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="training dataset folder (images/, masks/)")
    parser.add_argument("--hold-out", type=int, default=300, help="the trainer's hold_out (default 300)")
    parser.add_argument("--priors", nargs="*", default=[], metavar="NAME=FOLDER", help="prior maps to link as priors/NAME")
    parser.add_argument("--fold", type=int, default=None, help="keep only the held-out images of this fold of two")
    parser.add_argument("-o", "--out", required=True, help="folder to write the links to")
    args = parser.parse_args(argv)
    priors = dict(item.split("=", 1) for item in args.priors)
    data = FolderDataset(Path(args.data), masks=True)
    _, stems = hold_out(data.keys, args.hold_out)
    if args.fold is not None:
        fold = held_fold(args.data, 2, args.fold)
        stems = [s for s in stems if s in fold]
    link_view(data, stems, Path(args.out), {name: Path(folder) for name, folder in priors.items()})
    print(f"linked {len(stems)} held-out images of {args.data} into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
