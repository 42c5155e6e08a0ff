"""LDPS for salplug: learning deep relations to promote saliency detection (Chen et al., AAAI 2020)."""

from importlib import resources

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


@salplug.hookimpl
def salplug_register_chains(register):
    chains = resources.files(__name__) / "chains"
    register("baseline-ldps", chains / "baseline-ldps.yaml", "the baseline detector refined by LDPS",
             scores="sod-dev: MAE 0.0964, max F 0.8349, S 0.7953")
    register("ldps", chains / "ldps.yaml", "LDPS on another detector's maps (salplug eval --priors NAME)")
    register("ldps-online", chains / "ldps-online.yaml",
             "LDPS online: a fresh network fitted on each image, on another detector's maps")
