"""The durable log's segments (collector/journal.py, issue 23); the crash tests
of the whole are in tests/test_crash.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.journal import Journal
from collector.spool import Spool, SpoolFull


def test_the_log_keeps_its_segments_locked_until_disposed_of(tmp_path: Path) -> None:
    """Segments are spool files no replay may take while their beacons wait in
    memory; the writer's count removes them, the last one is truncated; a lost
    count (or a crash) leaves them to the next start's replay."""
    spool = Spool(tmp_path / "spool", max_bytes=2**20)
    spool.open()
    journal = Journal(spool, segment_max_bytes=1)  # a new segment after each append
    for n in range(3):
        journal.append([("beacon", n)], disposed=0)
    assert len(spool.pending_files()) == 3 and journal.appended == 3
    assert spool.claim() is None  # all held by the log
    journal.tidy(2)
    (last,) = spool.pending_files()
    journal.tidy(3)
    assert last.exists() and last.stat().st_size == 0 and journal.bytes == 0
    journal.append([("beacon", 3)], disposed=3)
    journal.close(None)
    claimed = spool.claim()
    assert claimed is not None and list(claimed.batches()) == [[("beacon", 3)]]


def test_the_log_shares_the_spools_cap(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=4096)
    spool.open()
    journal = Journal(spool)
    journal.append([("x" * 1000,)], disposed=0)
    journal.append([("x" * 1000,)], disposed=0)
    with pytest.raises(SpoolFull):
        journal.append([("x" * 3000,)], disposed=0)
    assert journal.appended == 2  # the refused group left nothing behind
    journal.close(2)
    assert spool.pending_files() == []
