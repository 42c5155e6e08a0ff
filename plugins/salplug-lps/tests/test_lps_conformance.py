"""The lps refiner and its trainer through each check of the conformance kit."""

import salplug.testing
from salplug_lps import LPS, LPSTrainer


@salplug.testing.parametrize_with_checks([LPS, LPSTrainer])
def test_conformance(component, check):
    check(component)
