"""The conformance kit for plugin authors, and timing helpers for benchmarks.

`parametrize_with_checks` turns components into pytest tests, one per (component, named
check of `salplug.testing.checks`); `check_component` runs every check at once;
`conformance_tests` does the former for every component of an installed plugin; `measure`
times a callable for pytest-benchmark.
"""

from salplug.testing import checks
from salplug.testing._benchmarking import DEVICES, measure
from salplug.testing.checks import ConformanceError, checks_for
from salplug.testing._kit import (
    EXAMPLE_KEYS,
    EXAMPLE_MAPS,
    Check,
    all_checks,
    check_component,
    check_config,
    check_example,
    check_params,
    conformance_tests,
    default_devices,
    parametrize_with_checks,
    plugin_components,
)

__all__ = [
    "DEVICES", "EXAMPLE_KEYS", "EXAMPLE_MAPS", "Check", "ConformanceError", "all_checks", "check_component",
    "check_config", "check_example", "check_params", "checks", "checks_for", "conformance_tests", "default_devices", "measure",
    "parametrize_with_checks", "plugin_components",
]
