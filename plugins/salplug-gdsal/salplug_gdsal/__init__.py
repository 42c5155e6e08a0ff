"""The ``gdsal`` prior: saliency from how a classifier wants the image changed (Pan & Jiang, 2016)."""

from importlib import resources

import salplug

from .prior import GradientDescentSaliency


@salplug.hookimpl
def salplug_register_priors(register):
    register(GradientDescentSaliency)


__all__ = ["GradientDescentSaliency"]


@salplug.hookimpl
def salplug_register_chains(register):
    chains = resources.files(__name__) / "chains"
    register("gdsal", chains / "gdsal.yaml", "input-gradient saliency of an ImageNet classifier, on superpixels",
             scores="sod-dev: MAE 0.2609, max F 0.5935, S 0.5359")
