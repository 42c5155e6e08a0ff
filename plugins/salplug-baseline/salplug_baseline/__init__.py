"""A supervised baseline detector trained on DUTS-TR masks: prior `baseline`, trainer `baseline`, backbone `baseline`."""

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
