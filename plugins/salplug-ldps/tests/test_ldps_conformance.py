"""The ldps refiner, in both modes, and its trainer through each check of the conformance kit."""

import salplug.testing
from salplug_ldps import LDPS, LDPSTrainer

ONLINE = LDPS(**{**LDPS.example_config, "mode": "online", "online_steps": 2})


def expected_failed_checks(component):
    if component in (LDPS, ONLINE):
        return {"check_config_documented": (
            "LDPS.Config documents its fields in attribute docstrings, which pydantic does not read")}
    return {}


@salplug.testing.parametrize_with_checks([LDPS, ONLINE, LDPSTrainer], expected_failed_checks=expected_failed_checks)
def test_conformance(component, check):
    check(component)
