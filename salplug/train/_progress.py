"""Progress lines of trainers: flushed at once, so the logs of long runs show where they are."""

from __future__ import annotations


def log(text: str) -> None:
    """A progress line, flushed at once so logs of long runs show where they are."""
    print(text, flush=True)
