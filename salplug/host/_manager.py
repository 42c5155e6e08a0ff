"""Plugin discovery and loading: entry points in, per-plugin status and registries out.

Every plugin, the core's built-ins included, comes from the ``salplug`` entry-point
group. Each is imported and asked to register on its own, so one that fails is recorded
with its error and the rest still load: also one that calls ``os._exit`` or does not
finish importing within ``SALPLUG_PLUGIN_TIMEOUT`` seconds. Discovery runs on first use,
not on import.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import signal
import threading
import traceback
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from salplug import hookspecs
from salplug.components._base import KINDS
from salplug.errors import did_you_mean
from salplug.host._chains import ChainRegistrar, ChainRegistry
from salplug.host._commands import Command, CommandRegistrar
from salplug.host._registry import Registrar, Registry

ENTRY_POINT_GROUP = "salplug"
DISABLE_ENV = "SALPLUG_DISABLE_PLUGINS"
TIMEOUT_ENV = "SALPLUG_PLUGIN_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
HOOKS = {
    "backbone": "salplug_register_backbones",
    "prior": "salplug_register_priors",
    "refiner": "salplug_register_refiners",
    "postprocessor": "salplug_register_postprocessors",
    "metric": "salplug_register_metrics",
    "trainer": "salplug_register_trainers",
}
COMMANDS_HOOK = "salplug_register_commands"
SPECS = frozenset(name for name in vars(hookspecs) if name.startswith("salplug_"))
"""Every hook a plugin may implement: the functions of `salplug.hookspecs`."""


@dataclass
class PluginInfo:
    """What `salplug plugins` shows for one plugin."""

    name: str
    module: str
    distribution: str
    version: str | None = None
    components: dict[str, list[str]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    """Its tools, run as ``salplug PLUGIN TOOL``."""
    chains: list[str] = field(default_factory=list)
    """Named chain specs it ships (``salplug run --chain NAME``)."""
    errors: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    """Names this plugin registers that another distribution registers too (neither builds)."""
    disabled: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors and not self.disabled and not self.conflicts


def disabled_names() -> set[str]:
    """Plugin or distribution names listed in ``SALPLUG_DISABLE_PLUGINS`` (comma separated)."""
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def import_time_limit() -> float | None:
    """Seconds one plugin's import may take: ``SALPLUG_PLUGIN_TIMEOUT`` (default 30; 0: no limit)."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        warnings.warn(f"{TIMEOUT_ENV}: expected seconds, a number of 0 or more (0: no limit), got {text!r}; "
                      f"using {DEFAULT_TIMEOUT:g}", stacklevel=2)
        return DEFAULT_TIMEOUT
    return seconds or None


class PluginExit(SystemExit):
    """What ``os._exit`` raises in a thread importing a plugin: that plugin fails, the process goes on."""


_importing = threading.local()
"""``_importing.pid`` is set in the threads that import plugins (a forked child is no such thread)."""
_real_exit = os._exit
_guards = 0
_stuck: list[threading.Thread] = []
"""Import threads that ran past the time limit and may still call ``os._exit``."""


def _exit(code: int) -> None:
    if getattr(_importing, "pid", None) == os.getpid():
        raise PluginExit(f"os._exit({code}) called while importing the plugin")
    _real_exit(code)


@contextlib.contextmanager
def _exit_guarded():
    """While plugins import, ``os._exit`` in an import thread raises `PluginExit`; other threads exit as usual."""
    global _guards
    os._exit = _exit
    _guards += 1
    try:
        yield
    finally:
        _guards -= 1
        _stuck[:] = [thread for thread in _stuck if thread.is_alive()]
        if not _guards and not _stuck:
            os._exit = _real_exit


def _import(ep: metadata.EntryPoint, limit: float | None) -> tuple[Any, str | None]:
    """The entry point's object and None, or None and why it did not load.

    The import runs in a daemon thread, so one that blocks is left behind after `limit`
    seconds; everything it raises is the plugin's own (Ctrl-C reaches the main thread).
    """
    outcome: dict[str, Any] = {}

    def load() -> None:
        _importing.pid = os.getpid()
        try:
            outcome["plugin"] = ep.load()
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=load, name=f"salplug import {ep.name}", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        _stuck.append(thread)
        return None, f"still importing after {limit:g} s ({TIMEOUT_ENV} raises the limit)"
    if "error" in outcome:
        return None, _error_text(outcome["error"])
    return outcome["plugin"], None


_marking = False
"""True while a KeyboardInterrupt can be told apart from the user's Ctrl-C (see `_real_interrupts_marked`)."""


class UserInterrupt(KeyboardInterrupt):
    """Ctrl-C pressed while plugins load: the one `BaseException` a plugin's failure must not swallow."""


@contextlib.contextmanager
def _real_interrupts_marked():
    """While loading, a SIGINT raises `UserInterrupt`, so a plugin that raises KeyboardInterrupt itself is told apart."""
    global _marking
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        _marking = True  # Ctrl-C is ignored here (a background job): any KeyboardInterrupt is a plugin's
        try:
            yield
        finally:
            _marking = False
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def interrupt(signum, frame):
        raise UserInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    _marking = True
    try:
        yield
    finally:
        _marking = False
        signal.signal(signal.SIGINT, previous)


def _isolated(err: BaseException) -> bool:
    """Whether a plugin's exception is recorded as its failure: everything but the user's own Ctrl-C.

    A plugin that calls ``sys.exit`` or raises KeyboardInterrupt in a hook must not end every
    command; where Ctrl-C cannot be marked (another thread, a custom SIGINT handler) a
    KeyboardInterrupt cannot be told apart and is re-raised.
    """
    if isinstance(err, KeyboardInterrupt):
        return _marking and not isinstance(err, UserInterrupt)
    return isinstance(err, (Exception, SystemExit, GeneratorExit))


def _error_text(err: BaseException) -> str:
    """The error and the plugin's line that raised it (frames of this module left out)."""
    where = [frame for frame in traceback.extract_tb(err.__traceback__) if frame.filename != __file__][-1:]
    at = f" (at {where[0].filename}:{where[0].lineno})" if where else ""
    what = str(err) if isinstance(err, PluginExit) else f"{type(err).__name__}: {err}"
    return f"{what}{at}"


def _unknown_hook_error(name: str) -> str:
    hint = did_you_mean(name, sorted(SPECS)) or f"; the hooks are {', '.join(sorted(SPECS))}"
    return f"{name!r} is not a salplug hook{hint}"


class PluginHost:
    """A pluggy manager plus the per-kind registries its plugins filled."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.registries: dict[str, Registry] = {kind: Registry(kind) for kind in KINDS}
        self.commands: dict[str, dict[str, Command]] = {}
        """Plugin name to its commands by name: the ``salplug PLUGIN TOOL`` subcommands."""
        self.chains = ChainRegistry()

    def discover(self) -> None:
        """Load every plugin of the entry-point group, each in isolation."""
        with _real_interrupts_marked(), _exit_guarded():
            self._discover()

    def _discover(self) -> None:
        disabled = disabled_names()
        limit = import_time_limit()
        seen: set[tuple[str, str]] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if (ep.name, ep.value) in seen:
                continue
            seen.add((ep.name, ep.value))
            dist = ep.dist.name if ep.dist else "(unknown distribution)"
            info = PluginInfo(ep.name, ep.value, dist, ep.dist.version if ep.dist else None)
            if ep.name in disabled or dist in disabled:
                info.disabled = True
                self.plugins[ep.name] = info
                continue
            plugin, error = _import(ep, limit)
            if error is not None:
                info.errors.append(f"import failed: {error}")
                self.plugins[ep.name] = info
                continue
            self.add(plugin, info)

    def add(self, plugin: Any, info: PluginInfo) -> PluginInfo:
        """Register one plugin object and collect its components into the registries."""
        if info.name in self.plugins and self.plugins[info.name].ok:
            info.errors.append(f"a plugin named {info.name!r} is already loaded")
            self.plugins[f"{info.name} ({info.distribution})"] = info
            return info
        self.plugins[info.name] = info
        try:
            self.pm.register(plugin, name=info.name)
        except BaseException as err:
            if not _isolated(err):
                raise
            info.errors.append(f"not a valid plugin: {_error_text(err)}")
            return info
        info.errors += [_unknown_hook_error(name) for name in self._unknown_hooks(plugin, info.name)]
        for kind, hook_name in HOOKS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name == info.name:
                    self._call_registration(impl, kind, info)
        for impl in self.pm.hook.salplug_register_chains.get_hookimpls():
            if impl.plugin_name == info.name:
                self._call_chains(impl, info)
        for impl in getattr(self.pm.hook, COMMANDS_HOOK).get_hookimpls():
            if impl.plugin_name == info.name:
                self._call_commands(impl, info)
        return info

    def _unknown_hooks(self, plugin: Any, name: str) -> list[str]:
        """Hooks the plugin implements that no spec defines: marked ones (pluggy's `check_pending`)
        and unmarked ``salplug_*`` functions, the usual shape of a misspelled hook."""
        marked = {caller.name for caller in self.pm.get_hookcallers(self.pm.get_plugin(name)) or ()
                  if not caller.has_spec()}
        named = {attr for attr in dir(plugin) if attr.startswith("salplug_") and attr not in SPECS
                 and inspect.isfunction(getattr(plugin, attr, None))}
        return sorted(marked | named)

    def _invoke(self, impl: pluggy.HookImpl, registrar: Any, info: PluginInfo) -> None:
        """Call one registration hook with its registrar; what it raises becomes the plugin's error."""
        try:
            impl.function(**{arg: registrar for arg in impl.argnames})
        except BaseException as err:
            if not _isolated(err):
                raise
            info.errors.append(f"{impl.function.__name__} failed: {_error_text(err)}")

    def _call_chains(self, impl: pluggy.HookImpl, info: PluginInfo) -> None:
        registrar = ChainRegistrar(self.chains, info.name, info.distribution)
        self._invoke(impl, registrar, info)
        info.chains.extend(registrar.registered)
        info.conflicts.extend(registrar.problems)

    def _call_commands(self, impl: pluggy.HookImpl, info: PluginInfo) -> None:
        registrar = CommandRegistrar(info.name)
        self._invoke(impl, registrar, info)
        if registrar.commands:
            self.commands.setdefault(info.name, {}).update(registrar.commands)
            info.commands.extend(registrar.commands)

    def _call_registration(self, impl: pluggy.HookImpl, kind: str, info: PluginInfo) -> None:
        registrar = Registrar(self.registries[kind], info.name, info.distribution)
        self._invoke(impl, registrar, info)
        if registrar.registered:
            info.components.setdefault(kind, []).extend(registrar.registered)
        for name, taken in registrar.clashes:
            note = f"{kind} {name!r} is registered by both {taken.distribution!r} and {info.distribution!r}"
            info.conflicts.append(note)
            holder = self.plugins.get(taken.plugin)
            if holder is not None and holder is not info:
                holder.conflicts.append(note)


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, discovered on first call."""
    global _host
    if _host is None:
        host = PluginHost()
        host.discover()
        _host = host
    return _host


def reload_plugins() -> PluginHost:
    """Forget loaded plugins and discover again (after installing one, or in tests)."""
    global _host
    _host = None
    return get_host()


def register_plugin(plugin: Any, name: str | None = None) -> PluginInfo:
    """Register a plugin object from Python, without an entry point (notebooks, tests)."""
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    info = PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), "(registered in Python)")
    return get_host().add(plugin, info)
