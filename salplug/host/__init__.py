"""The plugin host: loading plugins through the ``salplug`` entry points, the registry, building by name,
and the commands plugins add to the command line."""

from salplug.host._commands import Command, view_command
from salplug.host._factory import build, get_component, list_components
from salplug.host._manager import get_host, register_plugin, reload_plugins

__all__ = [
    "Command", "build", "get_component", "get_host", "list_components", "register_plugin", "reload_plugins",
    "view_command",
]
