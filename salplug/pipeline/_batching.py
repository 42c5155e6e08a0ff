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
BATCH_PIXELS = 1 << 24
"""Default pixels in one batch (about 16.8 million: eight 1448×1448 photos, or one 4096×4096): its
float32 RGB tensor is 200 MB, which leaves an 8 GB machine room for the steps' own tensors and for
the `PENDING_BATCHES` batches waiting. A photo larger than this goes in a batch of its own."""


def size_batches(
    entries: Iterable[Entry],
    size: Callable[[Entry], Hashable],
    batch_size: int,
    *,
    max_pixels: int | None = None,
    pixels: Callable[[Entry], int] | None = None,
) -> Iterator[list[Entry]]:
    """Yield lists of up to `batch_size` entries that share `size(entry)`, in arrival order.

    With `max_pixels`, a batch also holds at most that many pixels (`pixels(entry)` each; by default
    the product of the first two numbers of `size(entry)`, an array's H×W), so a batch of large
    photos is smaller than one of thumbnails; one entry above the budget still goes, alone.
    Entries waiting in all buckets are capped at `PENDING_BATCHES` times both limits.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels: expected a positive integer or None, got {max_pixels}")
    count = pixels or (lambda entry: int(size(entry)[0]) * int(size(entry)[1]))
    budget = max_pixels or 0
    buckets: dict[Hashable, list[Entry]] = {}
    waiting = pending = 0
    for entry in entries:
        key = size(entry)
        bucket = buckets.setdefault(key, [])
        bucket.append(entry)
        waiting += 1
        pending += count(entry) if budget else 0
        full = len(bucket) >= (min(batch_size, max(1, budget // max(count(entry), 1))) if budget else batch_size)
        if full or waiting >= PENDING_BATCHES * batch_size or (budget and pending >= PENDING_BATCHES * budget):
            released = buckets.pop(key if full else next(iter(buckets)))
            waiting -= len(released)
            pending -= sum(count(e) for e in released) if budget else 0
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
