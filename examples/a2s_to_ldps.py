"""The chain "A2S prior -> LDPS refiner" in plain Python, on the embedded sample photos.

    python examples/a2s_to_ldps.py [--out a2s-ldps-output] [--device cpu] [--size 320]

Needs salplug-a2s and salplug-ldps installed (``make demo`` installs every plugin in
plugins/). Both use their shipped checkpoints: nothing is trained or downloaded here.
Writes one PNG per photo and step and prints how much LDPS changed each A2S map.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import salplug
from salplug.data import SAMPLES, sample_tensor, write_map


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("a2s-ldps-output"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=320, help="photos are resized to size×size to batch them")
    args = parser.parse_args(argv)

    # Components by registry name; each takes its config as keyword options (validated here).
    chain = salplug.Chain(
        [
            ("a2s", salplug.build("prior", "a2s")),
            ("ldps", salplug.build("refiner", "ldps", mode="checkpoint")),
        ]
    ).to(args.device)

    images = torch.cat([sample_tensor(name, args.size) for name in SAMPLES])  # B×3×H×W in [0, 1]
    with torch.inference_mode():
        out = chain(images, keys=list(SAMPLES), return_steps=True)

    for step, maps in out.steps.items():
        for name, saliency in zip(SAMPLES, maps):
            write_map(args.out / step / f"{name}.png", saliency[0])
    change = (out.steps["ldps"] - out.steps["a2s"]).abs().mean(dim=(1, 2, 3))
    for name, value in zip(SAMPLES, change.tolist()):
        print(f"{name}: mean |ldps - a2s| = {value:.3f}")
    print(f"maps in {args.out}/a2s and {args.out}/ldps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
