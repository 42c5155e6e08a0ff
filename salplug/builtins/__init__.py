"""The core's own components, registered through the entry point like any plugin."""

from __future__ import annotations

from salplug import hookimpl

from .metrics import METRICS
from .postprocessors import Median, Normalize
from .priors import CenterPrior, GivenMaps


@hookimpl
def salplug_register_priors(register):
    register(GivenMaps)
    register(CenterPrior)


@hookimpl
def salplug_register_postprocessors(register):
    register(Normalize)
    register(Median)


@hookimpl
def salplug_register_metrics(register):
    for metric in METRICS:
        register(metric)
