"""A2S (Zhou et al., TCSVT): activation-to-saliency pseudo labels, then a self-rectifying detector."""

import salplug

from .stage1 import A2SStage1
from .stage2 import A2S
from .train_stage1 import A2SStage1Trainer
from .train_stage2 import A2STrainer

__all__ = ["A2S", "A2SStage1", "A2SStage1Trainer", "A2STrainer"]


@salplug.hookimpl
def salplug_register_priors(register):
    register(A2SStage1)
    register(A2S)


@salplug.hookimpl
def salplug_register_trainers(register):
    register(A2SStage1Trainer)
    register(A2STrainer)
