"""A stage-2 run state small enough to commit, so a run can move to another machine.

The full state holds the rectified labels of every training image (614 MB for 3,000 at 320 px
in fp16): too large to carry. The portable state is the same file without them (weights,
optimiser, schedule and RNG stay exact, 21-30 MB); `resume` then rebuilds the labels from
the detector it resumes (`losses.rebuilt_labels`).

    python -m salplug_a2s.portable_state runs/a2s/lite0/a2s-efficientnet-lite0.state.pt OUT.state.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from salplug.train import read_state, write_state


def make_portable(source: str | Path, dest: str | Path) -> Path:
    """Write `source`'s run state without its labels to `dest`."""
    state = read_state(source)
    state["extra"]["labels"] = None
    return write_state(state, dest)


def rebuild_error(source: str | Path) -> dict[str, float]:
    """What moving costs at this point: the labels a resume would rebuild against `source`'s true ones.

    Returns their mean absolute difference and the share of pixels on the other side of 0.5
    (the loss binarises the labels there). Reads the run's images as the trainer does.
    """
    from .stage2 import A2S
    from .train_stage2 import A2STrainer
    from .training import start_run

    state = read_state(source)
    if state["extra"]["labels"] is None:
        raise ValueError(f"{source} is already portable: it has no labels to compare with")
    trainer = A2STrainer(**state["settings"])
    cfg = trainer.config
    items, images = start_run(cfg, "a2s")
    model = A2S(checkpoint=None, backbone=cfg.backbone, backbone_weights=cfg.backbone_weights, size=cfg.size,
                channels=cfg.channels, seed=cfg.seed).to(cfg.device)
    model.load_state_dict(state["model"])
    epochs_done = json.loads(state["progress"])["epoch"]
    rebuilt = trainer.rebuild_labels(model, images, [k for k, _ in items], epochs_done, state["extra"]["stage1_digest"])
    true = state["extra"]["labels"].float()
    return {"epochs_done": epochs_done, "mean_abs_difference": round(float((rebuilt - true).abs().mean()), 5),
            "other_side_of_half": round(float(((rebuilt > 0.5) != (true > 0.5)).float().mean()), 5)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="full run state (<out stem>.state.pt)")
    parser.add_argument("dest", help="portable state to write; copy it beside `out` as <out stem>.state.pt to resume")
    parser.add_argument("--compare", action="store_true",
                        help="also rebuild the labels as a resume would and print how far they are from the true ones")
    args = parser.parse_args(argv)
    if args.compare:
        print(rebuild_error(args.source))
    path = make_portable(args.source, args.dest)
    print(f"{path}: {path.stat().st_size / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
