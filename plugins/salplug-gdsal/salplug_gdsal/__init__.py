"""The ``gdsal`` prior: saliency from how a classifier wants the image changed (Pan & Jiang, 2016)."""

import salplug

from .prior import GradientDescentSaliency


@salplug.hookimpl
def salplug_register_priors(register):
    register(GradientDescentSaliency)


__all__ = ["GradientDescentSaliency"]
