"""The conformance kit for plugin authors, and timing helpers for benchmarks.

`check_component` runs one component through every rule of the contract; `conformance_tests`
turns a plugin's components into pytest tests; `measure` times a callable for pytest-benchmark.
"""

from salplug.testing._benchmarking import DEVICES, measure
from salplug.testing._kit import (
    ConformanceError,
    check_component,
    check_config,
    check_example,
    conformance_tests,
    default_devices,
    plugin_components,
)

__all__ = [
    "DEVICES", "ConformanceError", "check_component", "check_config", "check_example",
    "conformance_tests", "default_devices", "measure", "plugin_components",
]
