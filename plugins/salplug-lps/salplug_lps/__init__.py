"""LPS for salplug: learning to promote saliency detectors (Zeng et al., CVPR 2018)."""

import salplug

from . import validation
from .refiner import LPS
from .train import LPSTrainer

__all__ = ["LPS", "LPSTrainer"]


@salplug.hookimpl
def salplug_register_refiners(register):
    register(LPS)


@salplug.hookimpl
def salplug_register_trainers(register):
    register(LPSTrainer)


@salplug.hookimpl
def salplug_register_commands(register):
    register(validation.COMMAND)
