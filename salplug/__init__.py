"""salplug: a plugin framework for refining salient-object-detection maps.

A prior provider makes a map, refiners improve it, post-processors clean it, metrics
score it; every component comes from a plugin and any of them compose into a `Chain`.
"""

from __future__ import annotations

import pluggy

from .chain import Chain, ChainOutput
from .components import (
    KINDS,
    Backbone,
    Component,
    ComponentConfig,
    Metric,
    PostProcessor,
    PriorProvider,
    Refiner,
    Trainer,
)
from .contracts import check_image, check_map, check_mask
from .errors import (
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
from .factory import build, get_component, list_components
from .loading import ImageBatch, LoadError, load_groups, load_images
from .plugins import get_host, register_plugin, reload_plugins
from .spec import ChainSpec, StepSpec, dump_spec, load_spec
from . import testing

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
    "testing",
    "__version__",
]
