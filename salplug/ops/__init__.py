"""Shared building blocks for components: resizing and the per-pixel confidence merge.

Functions here depend on torch alone, so any layer and any plugin may use them.
"""

from salplug.ops._merge import merge
from salplug.ops._resize import resize

__all__ = ["merge", "resize"]
