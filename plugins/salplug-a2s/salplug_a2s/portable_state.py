"""A stage-2 run state small enough to commit, so a run can move to another machine.

The full state holds the rectified labels of every training image (614 MB for 3,000 at 320 px
in fp16): too large to carry. The portable state is the same file without them (weights,
optimiser, schedule and RNG stay exact, about 21 MB); `resume` then rebuilds the labels from
the detector it resumes (`rebuilt_labels`).

    python -m salplug_a2s.portable_state runs/a2s/cpu/a2s-mobilenetv2.state.pt OUT.state.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from salplug.weights import read_payload, write_payload

LABEL_RESOLUTION = 1 / 512
"""Half a step of the 8-bit pseudo labels: a term weighted below it cannot change them."""


def rectifications(epochs_done: int, rectify_after: int) -> int:
    """How often every label has been rectified after `epochs_done` epochs (each image once per epoch)."""
    return max(0, epochs_done - rectify_after)


def rebuilt_labels(first: torch.Tensor | None, current: torch.Tensor, times: int, lam: float) -> torch.Tensor:
    """Labels after `times` rectifications G ← λ·G + (1 − λ)·Y, with every Y taken as the current map.

    The exact labels mix the maps of the last epochs (weights 1 − λ, λ(1 − λ), ...); the detector
    changes little between late epochs, so its current map stands in for them. `first` (stage 1's
    pseudo labels) is needed only while its weight λ^times can still move an 8-bit label.
    """
    weight = lam**times
    if weight < LABEL_RESOLUTION:
        return current
    if first is None:
        raise ValueError(f"after {times} rectifications the stage-1 labels still weigh {weight:.3g}: pass them")
    return weight * first + (1 - weight) * current


def needs_first_labels(times: int, lam: float) -> bool:
    """Whether `rebuilt_labels` needs stage 1's pseudo labels (their weight λ^times still counts)."""
    return lam**times >= LABEL_RESOLUTION


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
