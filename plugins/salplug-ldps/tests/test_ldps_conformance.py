"""The ldps refiner, in both modes, and its trainer through each check of the conformance kit."""

import salplug.testing
from salplug_ldps import LDPS, LDPSTrainer

ONLINE = LDPS(**{**LDPS.example_config, "mode": "online", "online_steps": 2})


@salplug.testing.parametrize_with_checks([LDPS, ONLINE, LDPSTrainer])
def test_conformance(component, check):
    check(component)
