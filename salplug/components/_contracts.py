"""Guards for the one data contract shared by every component.

Images are float RGB ``B×3×H×W`` in [0, 1]; saliency maps are float ``B×1×H×W``
probabilities in [0, 1]; masks are ``B×1×H×W`` booleans. Shape and dtype checks are
free; value checks need a reduction, so callers on a hot path may skip them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from salplug.errors import ContractError


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"{x.dtype} tensor of shape {tuple(x.shape)} on {x.device}"
    return f"{type(x).__name__}"


def _check(x: object, what: str, channels: int, floating: bool = True) -> Tensor:
    expected = f"{what}: expected a float B×{channels}×H×W tensor"
    if not isinstance(x, Tensor):
        raise ContractError(f"{expected}, got {_describe(x)}")
    if x.ndim != 4:
        hint = " (add the batch dimension with x[None])" if x.ndim == 3 else ""
        raise ContractError(f"{expected}, got {_describe(x)}{hint}")
    if x.shape[1] != channels:
        hint = " (channels-last input? use x.permute(0, 3, 1, 2))" if x.shape[-1] == channels else ""
        raise ContractError(f"{expected}, got {x.shape[1]} channels in {_describe(x)}{hint}")
    if floating and not x.is_floating_point():
        hint = " (8-bit data? divide by 255)" if x.dtype == torch.uint8 else ""
        raise ContractError(f"{expected}, got {_describe(x)}{hint}")
    if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ContractError(f"{expected} with no empty dimension, got {_describe(x)}")
    return x


def _check_range(x: Tensor, what: str) -> None:
    """One fused min/max reduction: NaN propagates into it, inf shows as a bound."""
    lo, hi = torch.stack(torch.aminmax(x.detach())).tolist()
    if lo >= 0.0 and hi <= 1.0:
        return
    if math.isnan(lo) or math.isnan(hi):
        raise ContractError(f"{what}: expected finite values in [0, 1], got NaN")
    if math.isinf(lo) or math.isinf(hi):
        raise ContractError(f"{what}: expected finite values in [0, 1], got min {lo} and max {hi}")
    hint = " (0-255 data? divide by 255)" if 1 < hi <= 255 and lo >= 0 else ""
    raise ContractError(f"{what}: expected values in [0, 1], got min {lo:.4g} and max {hi:.4g}{hint}")


def check_image(x: object, *, values: bool = True) -> Tensor:
    """Return `x` if it is a valid image batch, else raise `ContractError`."""
    x = _check(x, "image", 3)
    if values:
        _check_range(x, "image")
    return x


def check_map(x: object, *, values: bool = True, like: Tensor | None = None, what: str = "saliency") -> Tensor:
    """Return `x` if it is a valid saliency batch (matching `like`'s B, H, W when given)."""
    x = _check(x, what, 1)
    if like is not None:
        b, _, h, w = like.shape
        if (x.shape[0], x.shape[2], x.shape[3]) != (b, h, w):
            raise ContractError(
                f"{what}: expected shape ({b}, 1, {h}, {w}) to match the image batch, got {tuple(x.shape)}"
            )
    if values:
        _check_range(x, what)
    return x


def check_mask(x: object, *, like: Tensor | None = None) -> Tensor:
    """Return `x` if it is a boolean mask batch ``B×1×H×W``."""
    x = _check(x, "mask", 1, floating=False)
    if x.dtype != torch.bool:
        raise ContractError(f"mask: expected a bool B×1×H×W tensor, got {_describe(x)} (use mask > 0.5)")
    if like is not None and x.shape != like.shape:
        raise ContractError(f"mask: expected shape {tuple(like.shape)} to match the map, got {tuple(x.shape)}")
    return x
