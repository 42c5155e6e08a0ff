"""`make demo`: run a chain on scikit-image's bundled photos; write maps and a contact sheet.

    python examples/demo.py --out demo-output [--chain examples/chains/demo.yaml] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from salplug import Chain
from salplug.data import SAMPLES, contact_sheet, read_image, read_map, sample_photo, write_png
from salplug.pipeline import run_chain_on_files

DEFAULT_CHAIN = Path(__file__).parent / "chains" / "demo.yaml"


def write_samples(folder: Path) -> list[Path]:
    """Save the embedded sample photos as PNG files, the input of a normal directory run."""
    return [write_png(folder / f"{name}.png", sample_photo(name)) for name in SAMPLES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument("--chain", type=Path, default=DEFAULT_CHAIN)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    photos = write_samples(args.out / "photos")
    chain = Chain.from_spec(args.chain).to(args.device)
    maps = args.out / "maps"
    report = run_chain_on_files(chain, [args.out / "photos"], maps, overwrite=True, save_steps=True)
    print(report.summary())
    if report.failed:
        return 1

    steps = list(chain.named_steps)
    rows = [
        [read_image(photo)] + [read_map(maps / "steps" / step / f"{photo.stem}.png") for step in steps]
        for photo in photos
    ]
    sheet = write_png(args.out / "contact-sheet.png", contact_sheet(rows, ["photo", *steps]))
    print(f"maps in {maps}/, contact sheet {sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
