"""Grouping files of mixed sizes into batches of one size, with bounded memory.

Real datasets mix portrait and landscape photos; a batch needs one H×W. Entries wait in
per-size buckets; a full bucket is released at once, and when too many entries wait in
all, the oldest bucket goes out early, so a set of all-different sizes cannot pile up.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TypeVar

from salplug.errors import SalplugError

Entry = TypeVar("Entry")

PENDING_BATCHES = 4
"""Entries waiting in size buckets are capped at this many batches, whatever the mix of sizes."""


def size_batches(
    entries: Iterable[Entry], size: Callable[[Entry], Hashable], batch_size: int
) -> Iterator[list[Entry]]:
    """Yield lists of up to `batch_size` entries that share `size(entry)`, in arrival order."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    buckets: dict[Hashable, list[Entry]] = {}
    pending = 0
    for entry in entries:
        key = size(entry)
        bucket = buckets.setdefault(key, [])
        bucket.append(entry)
        pending += 1
        if len(bucket) == batch_size or pending >= PENDING_BATCHES * batch_size:
            released = buckets.pop(key if len(bucket) == batch_size else next(iter(buckets)))
            pending -= len(released)
            yield released
    yield from buckets.values()


def failure_reason(err: Exception) -> str:
    """A one-line reason for a report: salplug's own messages as they are, others with their type."""
    return str(err) if isinstance(err, SalplugError) else f"{type(err).__name__}: {err}"


def isolated(batch: list[Entry], run: Callable[[list[Entry]], None], fail: Callable[[Entry, Exception], None]) -> None:
    """`run(batch)`; if it raises, run each entry alone, so only the entries at fault reach `fail`.

    Ctrl-C (`KeyboardInterrupt`) is not an `Exception` and still stops the whole run.
    """
    try:
        run(batch)
    except Exception as err:
        if len(batch) == 1:
            fail(batch[0], err)
        else:
            for entry in batch:
                isolated([entry], run, fail)
