"""Exceptions that say what was expected and what came, and the hint that names a close match.

Every error a user can meet from salplug derives from `SalplugError`, so a script can
catch the library's failures without swallowing its own bugs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(
    name: str,
    choices: Iterable[str],
    *,
    n: int = 1,
    ignore_case: bool = False,
    cutoff: float = 0.6,
    sentence: bool = False,
) -> str:
    """``; did you mean 'x'?`` for the up to `n` choices closest to `name`, or ``""`` when none is close.

    One wording for every misspelt name a user can meet. The hint ends a clause of the
    message (``"unknown hook 'x'; did you mean 'y'?"``); with `sentence` it is a sentence
    of its own (``" Did you mean 'y'?"``) for messages made of sentences. With
    `ignore_case` the match ignores case and the hint spells the choices as they are.
    """
    spelled = {(c.lower() if ignore_case else c): c for c in choices}
    key = name.lower() if ignore_case else name
    close = [repr(spelled[c]) for c in difflib.get_close_matches(key, spelled, n=n, cutoff=cutoff)]
    if not close:
        return ""
    names = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f" Did you mean {names}?" if sentence else f"; did you mean {names}?"


class SalplugError(Exception):
    """Base of every error raised on purpose by salplug."""


class ContractError(SalplugError, ValueError):
    """A tensor broke the data contract (shape, dtype, range or device)."""


class UnknownComponentError(SalplugError, KeyError):
    """A component name that no installed plugin registered."""

    def __init__(self, kind: str, name: str, installed: Iterable[str], note: str = "", step: str | None = None):
        self.kind, self.name, self.note, self.step = kind, name, note, step
        self.installed = sorted(installed)
        hint = did_you_mean(name, self.installed, n=3, ignore_case=True, cutoff=0.5, sentence=True)
        listing = ", ".join(self.installed) if self.installed else "none"
        where = f"step {step!r}: " if step else ""
        super().__init__(
            f"{where}unknown {kind} {name!r}.{note and ' ' + note + '.'}{hint} Installed {kind}s: {listing}. "
            f"Run `salplug plugins` to see what is installed and what failed to load."
        )

    def __str__(self) -> str:
        return str(self.args[0])


class DuplicateComponentError(SalplugError):
    """Two distributions registered the same name for the same kind."""

    def __init__(self, kind: str, name: str, first: str, second: str):
        self.kind, self.name, self.first, self.second = kind, name, first, second
        super().__init__(
            f"{kind} {name!r} is registered by both {first!r} and {second!r}; "
            f"uninstall one of them or disable one with SALPLUG_DISABLE_PLUGINS."
        )


class ConfigError(SalplugError, ValueError):
    """Options that a component's `Config` rejected, with the step and fields named."""

    def __init__(self, kind: str, name: str, problems: list[tuple[str, str]], step: str | None = None):
        self.kind, self.name, self.step, self.problems = kind, name, step, problems
        where = f"step {step!r} ({kind} {name!r})" if step else f"{kind} {name!r}"
        lines = "; ".join(f"field {field!r}: {msg}" for field, msg in problems)
        super().__init__(f"bad config for {where}: {lines}")


class SettingsError(SalplugError, ValueError):
    """A ``KEY=VALUE`` setting (``--set``) that cannot be read."""


class ChainError(SalplugError, ValueError):
    """A chain whose steps are in the wrong order, of the wrong kind, or badly named."""


class StepError(SalplugError, RuntimeError):
    """A step failed while running; the original error is chained as `__cause__`."""

    def __init__(self, step: str, kind: str, name: str, error: BaseException):
        self.step, self.kind, self.name = step, kind, name
        super().__init__(f"step {step!r} ({kind} {name!r}) failed: {type(error).__name__}: {error}")


class ImageReadError(SalplugError, OSError):
    """A file that could not be read as an image or saliency map."""

    def __init__(self, path: object, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"cannot read {self.path}: {reason}")

    def __str__(self) -> str:
        return f"cannot read {self.path}: {self.reason}"


class CheckpointError(SalplugError, ValueError):
    """A weights file that does not belong to the component loading it."""


class WeightsNotFoundError(SalplugError, LookupError):
    """No source could supply the weights a tag names; `tried` says which and why."""

    def __init__(self, arch: str, tag: str, tried: list[tuple[str, str]]):
        self.arch, self.tag, self.tried = arch, tag, tried
        lines = "".join(f"\n  - {source}: {why}" for source, why in tried)
        super().__init__(f"no weights for {arch!r} tag {tag!r}; expected one of these sources to work, got:{lines}")


class UntrainedWarning(UserWarning):
    """A learned component runs without learned weights (``checkpoint: null``): its maps are not the method's."""
