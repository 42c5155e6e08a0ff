"""The one rule for a device a component or trainer may run on: torch parses it and it computes."""

from __future__ import annotations

import torch


def require_computing(device: torch.device, asked: str) -> None:
    """Refuse ``meta``, whose tensors hold no values, before a chain or a training builds anything."""
    if device.type == "meta":
        raise ValueError(f"expected a device that computes (cpu, cuda, mps), got {asked!r}, whose tensors hold no values")
