"""A supervised baseline detector trained on DUTS-TR masks: prior `baseline`, trainer `baseline`."""

import salplug

from .prior import Baseline
from .train import BaselineTrainer

__all__ = ["Baseline", "BaselineTrainer"]


@salplug.hookimpl
def salplug_register_priors(register):
    register(Baseline)


@salplug.hookimpl
def salplug_register_trainers(register):
    register(BaselineTrainer)
