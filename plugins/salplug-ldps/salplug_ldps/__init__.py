"""LDPS for salplug: learning deep relations to promote saliency detection (Chen et al., AAAI 2020)."""

import salplug

from .refiner import LDPS
from .train import LDPSTrainer

__all__ = ["LDPS", "LDPSTrainer"]


@salplug.hookimpl
def salplug_register_refiners(register):
    register(LDPS)


@salplug.hookimpl
def salplug_register_trainers(register):
    register(LDPSTrainer)
