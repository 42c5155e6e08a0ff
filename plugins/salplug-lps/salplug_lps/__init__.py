"""LPS for salplug: learning to promote saliency detectors (Zeng et al., CVPR 2018)."""

from importlib import resources

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


@salplug.hookimpl
def salplug_register_chains(register):
    chains = resources.files(__name__) / "chains"
    register("baseline-lps", chains / "baseline-lps.yaml", "the baseline detector refined by LPS (the default)",
             scores="sod-dev: MAE 0.1007, max F 0.8290, S 0.7924", default=True)
    register("lps", chains / "lps.yaml", "LPS (T = 1) on another detector's maps (salplug eval --priors NAME)")
    register("lps-t3", chains / "lps-t3.yaml", "LPS with three anchor rounds averaged, on another detector's maps")
    register("lps-t3-last", chains / "lps-t3-last.yaml", "LPS with three anchor rounds, the last round's map")
    register("lps-ldps", chains / "lps-ldps.yaml", "LPS then LDPS on another detector's maps")
    register("ldps-lps", chains / "ldps-lps.yaml", "LDPS then LPS on another detector's maps")
