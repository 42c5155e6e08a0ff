"""The ``salplug`` command: the top layer, which nothing else in the package imports."""

from salplug.cli._app import main

__all__ = ["main"]
