"""A supervised baseline detector trained on DUTS-TR masks: prior `baseline`, trainer `baseline`, backbone `baseline`."""

from importlib import resources

import salplug

from . import out_of_fold
from .backbone import BaselineFeatures
from .prior import Baseline
from .train import BaselineTrainer

__all__ = ["Baseline", "BaselineFeatures", "BaselineTrainer"]


@salplug.hookimpl
def salplug_register_backbones(register):
    register(BaselineFeatures)


@salplug.hookimpl
def salplug_register_priors(register):
    register(Baseline)


@salplug.hookimpl
def salplug_register_trainers(register):
    register(BaselineTrainer)


@salplug.hookimpl
def salplug_register_commands(register):
    register(out_of_fold.COMMAND)


@salplug.hookimpl
def salplug_register_chains(register):
    chains = resources.files(__name__) / "chains"
    register("baseline", chains / "baseline.yaml", "the supervised baseline detector alone (MobileNetV2, DUTS-TR)",
             scores="sod-dev: MAE 0.1017, max F 0.8255, S 0.7945")
