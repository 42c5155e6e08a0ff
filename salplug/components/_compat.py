"""Import shims for the optional vision stack.

timm imports torchvision, and a torchvision wheel built for another torch (a CUDA build
beside a CPU torch) fails at import with ``operator torchvision::nms does not exist``
because its ``_C`` extension cannot load and register its operators. timm never calls
those operators, so declaring their schemas is enough for the Python side to import.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import torch

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_stub: torch.library.Library | None = None  # kept alive: dropping it unregisters the schemas


def _broken_torchvision_extension() -> bool:
    """True when torchvision is installed but its ``_C`` extension does not load."""
    if hasattr(torch.ops.torchvision, "nms"):
        return False
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    folder = Path(spec.submodule_search_locations[0])
    found = [folder / f"_C{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    found = [path for path in found if path.exists()]
    if not found:
        return True
    try:
        torch.ops.load_library(str(found[0]))
    except OSError:
        return True
    return False


def import_timm() -> ModuleType:
    """Import and return timm, declaring torchvision's detection ops first if its extension is broken."""
    global _stub
    if _stub is None and _broken_torchvision_extension():
        _stub = torch.library.Library("torchvision", "DEF")
        for schema in _SCHEMAS:
            _stub.define(schema)
    import timm

    return timm
