"""Training: the one loop every trainer runs on, its data, feature caches and progress logging."""

from salplug.train._data import TrainingSet
from salplug.train._feature_cache import FeatureCache
from salplug.train._loop import (Hooks, Interrupted, LoopConfig, LoopResult, Progress, fit, poly_schedule, read_state,
                                 state_path, stored_settings, write_state)
from salplug.train._parallel import Group, current as parallel_group, gather
from salplug.train._progress import log

__all__ = ["FeatureCache", "Group", "Hooks", "Interrupted", "LoopConfig", "LoopResult", "Progress", "TrainingSet",
           "fit", "gather", "log", "parallel_group", "poly_schedule", "read_state", "state_path", "stored_settings", "write_state"]
