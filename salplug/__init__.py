"""salplug: a plugin framework for refining salient-object-detection maps.

A prior provider makes a map, refiners improve it, post-processors clean it, metrics
score it; every component comes from a plugin and any of them compose into a `Chain`.
"""

from __future__ import annotations

import pluggy

from salplug.components import (
    KINDS,
    Backbone,
    Component,
    ComponentConfig,
    Metric,
    PostProcessor,
    PriorProvider,
    Refiner,
    Trainer,
    check_image,
    check_map,
    check_mask,
)
from salplug.data import ImageBatch, LoadError, load_groups, load_images
from salplug.errors import (
    ChainError,
    CheckpointError,
    ConfigError,
    ContractError,
    DuplicateComponentError,
    ImageReadError,
    SalplugError,
    StepError,
    UnknownComponentError,
    WeightsNotFoundError,
)
from salplug.host import build, get_component, get_host, list_components, register_plugin, reload_plugins
from salplug.pipeline import Chain, ChainOutput, ChainSpec, StepSpec, dump_spec, load_spec
from salplug import components, data, host, metrics, models, ops, pipeline, testing, train

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("salplug")
"""Marks a plugin's hook implementations: ``@salplug.hookimpl``."""

__all__ = [
    "KINDS",
    "Backbone",
    "Chain",
    "ChainError",
    "ChainOutput",
    "ChainSpec",
    "CheckpointError",
    "Component",
    "ComponentConfig",
    "ConfigError",
    "ContractError",
    "DuplicateComponentError",
    "ImageBatch",
    "ImageReadError",
    "LoadError",
    "Metric",
    "PostProcessor",
    "PriorProvider",
    "Refiner",
    "SalplugError",
    "StepError",
    "StepSpec",
    "Trainer",
    "UnknownComponentError",
    "WeightsNotFoundError",
    "build",
    "check_image",
    "check_map",
    "check_mask",
    "dump_spec",
    "get_component",
    "get_host",
    "hookimpl",
    "list_components",
    "load_groups",
    "load_images",
    "load_spec",
    "register_plugin",
    "reload_plugins",
    "components",
    "data",
    "host",
    "metrics",
    "models",
    "ops",
    "pipeline",
    "testing",
    "train",
    "__version__",
]
