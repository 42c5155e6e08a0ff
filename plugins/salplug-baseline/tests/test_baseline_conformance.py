"""Every component and trainer of salplug-baseline through each check of the conformance kit."""

import salplug.testing
from salplug_baseline import Baseline, BaselineFeatures, BaselineTrainer


@salplug.testing.parametrize_with_checks([BaselineFeatures, Baseline, BaselineTrainer])
def test_conformance(component, check):
    check(component)
