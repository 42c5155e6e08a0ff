"""MIJR for salplug: multiple-instance joint re-learning (Ma et al., IEEE TMM)."""

from importlib import resources

import salplug

from . import ceilings, validation
from .pool import PoolImage
from .refiner import MIJR
from .train import MIJRTrainer

__all__ = ["MIJR", "MIJRTrainer", "PoolImage"]


@salplug.hookimpl
def salplug_register_refiners(register):
    register(MIJR)


@salplug.hookimpl
def salplug_register_trainers(register):
    register(MIJRTrainer)


@salplug.hookimpl
def salplug_register_commands(register):
    register(validation.COMMAND)
    register(ceilings.COMMAND)


@salplug.hookimpl
def salplug_register_chains(register):
    chains = resources.files(__name__) / "chains"
    register("mijr", chains / "mijr.yaml",
             "MIJR cross-image re-learning on another detector's maps (needs a fitted pool)")
