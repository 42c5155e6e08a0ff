"""The mijr refiner, fitted on a tiny synthetic pool, and its trainer through each check of the conformance kit."""

import salplug.testing
from mijr_synthetic import pool
from salplug_mijr import MIJR, MIJRTrainer


@salplug.testing.parametrize_with_checks([MIJR(**MIJR.example_config).fit(pool(4, 3)), MIJRTrainer])
def test_conformance(component, check):
    check(component)
