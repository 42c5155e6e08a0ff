"""The test module `salplug.pytest_plugin` adds to a run: one test per (component, check)."""

from __future__ import annotations

from salplug.testing._kit import check_params, plugin_components


def pytest_generate_tests(metafunc) -> None:
    if "salplug_component" in metafunc.fixturenames:
        classes = [cls for name in metafunc.config.getoption("salplug_conformance") for cls in plugin_components(name)]
        params = check_params(classes)
        metafunc.parametrize(("salplug_component", "salplug_check"), params)


def test_conformance(salplug_component, salplug_check) -> None:
    salplug_check(salplug_component)
