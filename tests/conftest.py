"""Markers that depend on the machine: ``data`` needs ../shared/data, ``gpu`` a CUDA device.

The markers are registered in pyproject.toml (``--strict-markers``); here, tests that carry
one are skipped, with the reason, where the machine lacks what it names. The hook sees
every collected test, plugin tests included, whenever ``tests/`` is collected.
"""

from __future__ import annotations

import pytest

from tests.shared_data import SOD_DEV, has_sod_dev


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    needs = {
        "data": (has_sod_dev, f"needs the shared SOD data (sod-dev), not found at {SOD_DEV}"),
        "gpu": (_cuda, "needs a CUDA device"),
    }
    present: dict[str, bool] = {}
    for item in items:
        for name, (check, reason) in needs.items():
            if item.get_closest_marker(name) is None:
                continue
            if name not in present:
                present[name] = check()
            if not present[name]:
                item.add_marker(pytest.mark.skip(reason=reason))
