"""`make demo`: the default chain and an A2S chain on scikit-image's bundled photos.

    python examples/demo.py --out demo-output [--chain NAME-OR-SPEC] [--device cpu]

Writes the photos, each chain's maps (every step's map too) and a contact sheet: the photo,
the default chain's steps, and beside them the map of a chain whose prior, A2S, was trained
without masks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import salplug
from salplug import Chain
from salplug.data import SAMPLES, contact_sheet, read_image, read_map, sample_photo, write_png
from salplug.pipeline import run_chain_on_files

MASK_FREE = "a2s-ldps-densecrf"
"""A chain whose prior was trained without masks, shown beside the default for comparison."""


def write_samples(folder: Path) -> list[Path]:
    """Save the embedded sample photos as PNG files, the input of a normal directory run."""
    return [write_png(folder / f"{name}.png", sample_photo(name)) for name in SAMPLES]


def run(name: str, photos: Path, out: Path, device: str) -> Chain | None:
    """Run one chain over the photos into `out`, every step's map kept; None when a photo failed."""
    chain = Chain.from_spec(name).to(device)
    report = run_chain_on_files(chain, [photos], out, overwrite=True, save_steps=True)
    print(f"{name}: {report.summary()}")
    return None if report.failed else chain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument("--chain", default=None, help="a chain name or spec file (default: the default chain)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    name = args.chain or salplug.get_host().chains.default.name
    photos = write_samples(args.out / "photos")
    chain = run(name, args.out / "photos", args.out / "maps", args.device)
    mask_free = run(MASK_FREE, args.out / "photos", args.out / MASK_FREE, args.device)
    if chain is None or mask_free is None:
        return 1

    steps = list(chain.named_steps)
    rows = [
        [read_image(photo)]
        + [read_map(args.out / "maps" / "steps" / step / f"{photo.stem}.png") for step in steps]
        + [read_map(args.out / MASK_FREE / f"{photo.stem}.png")]
        for photo in photos
    ]
    labels = ["photo", *(f"{name}: {step}" for step in steps), MASK_FREE]
    sheet = write_png(args.out / "contact-sheet.png", contact_sheet(rows, labels))
    print(f"\nmaps in {args.out / 'maps'}/, {MASK_FREE}'s in {args.out / MASK_FREE}/, "
          f"side by side in {sheet}")
    print("\nnext: masks for your own photos (with .venv/bin on your PATH, e.g. `source .venv/bin/activate`):\n"
          "    salplug run photos/ -o masks/\n"
          "other chains: salplug list chain; their options: salplug show KIND NAME")
    return 0


if __name__ == "__main__":
    sys.exit(main())
