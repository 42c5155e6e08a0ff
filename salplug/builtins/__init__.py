"""The core's own components, registered through the entry point like any plugin."""

from __future__ import annotations

from salplug import hookimpl

from salplug.builtins.crf import DenseCRF
from salplug.builtins.backbones import BACKBONES
from salplug.builtins.metrics import METRICS
from salplug.builtins.postprocessors import Binarize, GuidedFilter, Median, Normalize
from salplug.builtins.priors import CenterPrior, GivenMaps


@hookimpl
def salplug_register_backbones(register):
    for backbone in BACKBONES:
        register(backbone)


@hookimpl
def salplug_register_priors(register):
    register(GivenMaps)
    register(CenterPrior)


@hookimpl
def salplug_register_postprocessors(register):
    register(Normalize)
    register(Median)
    register(GuidedFilter)
    register(Binarize)
    register(DenseCRF)


@hookimpl
def salplug_register_metrics(register):
    for metric in METRICS:
        register(metric)
