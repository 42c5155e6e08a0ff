"""Classical, training-free saliency priors for salplug: spectral residual, MB, MB+ and frequency-tuned."""

import salplug

from .frequency_tuned import FrequencyTuned
from .mbd import MinimumBarrier, MinimumBarrierPlus
from .spectral_residual import SpectralResidual

__all__ = ["FrequencyTuned", "MinimumBarrier", "MinimumBarrierPlus", "SpectralResidual"]


@salplug.hookimpl
def salplug_register_priors(register):
    for cls in (SpectralResidual, MinimumBarrier, MinimumBarrierPlus, FrequencyTuned):
        register(cls)
