"""Shared building blocks for components: the device rule, resizing, the per-pixel confidence merge, images as
numpy arrays and their SLIC superpixels.

Functions here depend on torch, numpy and scikit-image alone, so any layer and any plugin may use them.
"""

from salplug.ops._device import require_computing
from salplug.ops._images import superpixels, to_hwc
from salplug.ops._merge import merge
from salplug.ops._resize import resize

__all__ = ["merge", "require_computing", "resize", "superpixels", "to_hwc"]
