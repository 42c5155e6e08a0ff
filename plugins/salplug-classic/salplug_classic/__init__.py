"""Classical, training-free saliency priors for salplug: spectral residual, MB, MB+ and frequency-tuned."""

from importlib import resources

import salplug

from .frequency_tuned import FrequencyTuned
from .mbd import MinimumBarrier, MinimumBarrierPlus
from .spectral_residual import SpectralResidual

__all__ = ["FrequencyTuned", "MinimumBarrier", "MinimumBarrierPlus", "SpectralResidual"]


@salplug.hookimpl
def salplug_register_priors(register):
    for cls in (SpectralResidual, MinimumBarrier, MinimumBarrierPlus, FrequencyTuned):
        register(cls)


@salplug.hookimpl
def salplug_register_chains(register):
    chains = resources.files(__name__) / "chains"
    register("mbd-plus", chains / "mbd-plus.yaml", "minimum barrier saliency with its post-processing (MB+)",
             scores="sod-dev: MAE 0.2404, max F 0.6200, S 0.6339")
    register("mbd", chains / "mbd.yaml", "minimum barrier distance to the image border (MB)",
             scores="sod-dev: MAE 0.2902, max F 0.5758, S 0.5625")
    register("frequency-tuned", chains / "frequency-tuned.yaml", "frequency-tuned colour contrast (Achanta et al.)",
             scores="sod-dev: MAE 0.4007, max F 0.3940, S 0.4278")
    register("spectral-residual", chains / "spectral-residual.yaml", "spectral residual (Hou and Zhang)",
             scores="sod-dev: MAE 0.4022, max F 0.3927, S 0.4570")
