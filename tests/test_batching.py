"""Size buckets: batches share one size, keep arrival order, and never hold too much."""

from __future__ import annotations

import pytest

from salplug.pipeline._batching import PENDING_BATCHES, size_batches


def test_batches_share_a_size_and_keep_order():
    entries = [("a", 1), ("b", 2), ("c", 1), ("d", 1), ("e", 2)]
    batches = list(size_batches(entries, lambda e: e[1], batch_size=2))
    assert batches == [[("a", 1), ("c", 1)], [("b", 2), ("e", 2)], [("d", 1)]]


def test_waiting_entries_are_capped_across_sizes():
    entries = list(range(20))
    waiting_max = 0
    consumed = 0

    def counted():
        nonlocal consumed
        for e in entries:
            consumed += 1
            yield e

    released = 0
    for batch in size_batches(counted(), lambda e: e, batch_size=3):
        released += len(batch)
        waiting_max = max(waiting_max, consumed - released)
    assert released == 20
    assert waiting_max < PENDING_BATCHES * 3


def test_rejects_empty_batches():
    with pytest.raises(ValueError, match="positive integer, got 0"):
        list(size_batches([1], lambda e: e, batch_size=0))
