"""A2S (Zhou et al., TCSVT): activation-to-saliency pseudo labels, then a self-rectifying detector."""

from importlib import resources

import argparse

import salplug
from salplug.host import Command

from . import portable_state
from .stage1 import A2SStage1
from .stage2 import A2S
from .train_stage1 import A2SStage1Trainer
from .train_stage2 import A2STrainer

__all__ = ["A2S", "A2SStage1", "A2SStage1Trainer", "A2STrainer"]


@salplug.hookimpl
def salplug_register_priors(register):
    register(A2SStage1)
    register(A2S)


@salplug.hookimpl
def salplug_register_trainers(register):
    register(A2SStage1Trainer)
    register(A2STrainer)


def _portable_state_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="full run state (<out stem>.state.pt)")
    parser.add_argument("dest", help="portable state to write; copy it beside `out` as <out stem>.state.pt to resume")
    parser.add_argument("--compare", action="store_true",
                        help="also rebuild the labels as a resume would and print how far they are from the true ones")


def _portable_state(args: argparse.Namespace) -> None:
    """`portable_state.main`, which keeps the run-state format in step with the trainer."""
    portable_state.main([args.source, args.dest, *(["--compare"] if args.compare else [])])


@salplug.hookimpl
def salplug_register_commands(register):
    register(Command("portable-state", "write a stage-2 run state without its labels, small enough to move",
                     _portable_state_arguments, _portable_state))


@salplug.hookimpl
def salplug_register_chains(register):
    chains = resources.files(__name__) / "chains"
    register("a2s", chains / "a2s.yaml", "A2S stage 2 on photos: a detector trained without masks",
             scores="sod-dev: MAE 0.1709, adaptive F 0.7159, S 0.6677")
    register("a2s-stage1", chains / "a2s-stage1.yaml", "A2S stage 1's pseudo-label maps on photos",
             scores="sod-dev: MAE 0.2044, adaptive F 0.6256, S 0.5929")
    register("a2s-stage1-activation", chains / "a2s-stage1-activation.yaml",
             "A2S stage 1's raw activation map, before its CRF and median",
             scores="sod-dev: MAE 0.2381, adaptive F 0.5398, S 0.5392")
    register("a2s-ldps", chains / "a2s-ldps.yaml", "A2S refined by LDPS",
             scores="sod-dev: MAE 0.1495, adaptive F 0.7653, S 0.7067")
    register("a2s-ldps-densecrf", chains / "a2s-ldps-densecrf.yaml", "A2S refined by LDPS, then DenseCRF",
             scores="sod-dev: MAE 0.1492, adaptive F 0.7667, S 0.7075")
