"""Every component and trainer of salplug-a2s through each check of the conformance kit."""

import salplug.testing
from salplug_a2s import A2S, A2SStage1, A2SStage1Trainer, A2STrainer


@salplug.testing.parametrize_with_checks([A2SStage1, A2S, A2SStage1Trainer, A2STrainer])
def test_conformance(component, check):
    check(component)
