"""A stage-2 run state small enough to commit, so a run can move to another machine.

The full state holds the rectified labels of every training image (614 MB for 3,000 at 320 px
in fp16): too large to carry. The portable state is the same file without them (weights,
optimiser, schedule and RNG stay exact, about 21 MB); `resume` then rebuilds the labels from
the detector it resumes (`losses.rebuilt_labels`).

    python -m salplug_a2s.portable_state runs/a2s/cpu/a2s-mobilenetv2.state.pt OUT.state.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from salplug.weights import read_payload, write_payload


def make_portable(source: str | Path, dest: str | Path, fmt: str) -> Path:
    """Write `source`'s run state without its labels to `dest`."""
    state = read_payload(source, fmt, what="a2s run state", expected=f"a2s run state {source}: expected a {fmt} file")
    state["labels"] = None
    return write_payload(state, dest)


def main(argv: list[str] | None = None) -> None:
    from .train_stage2 import STATE_FORMAT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="full run state (<out stem>.state.pt)")
    parser.add_argument("dest", help="portable state to write; copy it beside `out` as <out stem>.state.pt to resume")
    args = parser.parse_args(argv)
    path = make_portable(args.source, args.dest, STATE_FORMAT)
    print(f"{path}: {path.stat().st_size / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
