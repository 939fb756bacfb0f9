"""Spool replay (collector/replay.py). Replays against a real PostgreSQL, after an
outage and across restarts, are in tests/test_writer.py and tests/test_faults.py."""

from __future__ import annotations

from collector.replay import _coalesce


def test_spooled_batches_are_joined_into_writes_of_about_the_given_rows() -> None:
    batches = [[(i, j) for j in range(size)] for i, size in enumerate([3, 4, 1, 5, 2])]
    writes = list(_coalesce(iter(batches), 6))
    assert [len(write) for write in writes] == [7, 6, 2]
    assert [row for write in writes for row in write] == [row for b in batches for row in b]
