"""Training: the loop every trainer runs on, its data, feature caches and progress logging."""

from salplug.train._data import TrainingSet
from salplug.train._feature_cache import FeatureCache
from salplug.train._loop import LoopConfig, fit, poly_schedule, state_path
from salplug.train._progress import end_epoch, log

__all__ = ["FeatureCache", "LoopConfig", "TrainingSet", "end_epoch", "fit", "log", "poly_schedule", "state_path"]
