"""Every prior of salplug-classic through each check of the conformance kit."""

import salplug.testing
from salplug_classic import FrequencyTuned, MinimumBarrier, MinimumBarrierPlus, SpectralResidual


@salplug.testing.parametrize_with_checks([SpectralResidual, MinimumBarrier, MinimumBarrierPlus, FrequencyTuned])
def test_conformance(component, check):
    check(component)
