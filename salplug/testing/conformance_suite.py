"""The test module `salplug.pytest_plugin` adds to a run: one conformance test per component."""

from __future__ import annotations

from salplug.testing._kit import check_example, plugin_components


def pytest_generate_tests(metafunc) -> None:
    if "salplug_component" in metafunc.fixturenames:
        classes = [cls for name in metafunc.config.getoption("salplug_conformance") for cls in plugin_components(name)]
        metafunc.parametrize("salplug_component", classes, ids=[f"{c.kind}:{c.name}" for c in classes])


def test_conformance(salplug_component) -> None:
    check_example(salplug_component)
