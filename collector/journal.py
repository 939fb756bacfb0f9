"""The durable log (issue 23): with BINOME_DURABLE=true a beacon is answered 204
only once it is in an fsynced local file, so a crash (kill -9, out of memory, a
node lost) loses nothing that was acknowledged.

The log is a sequence of *segments*, which are spool files (collector/spool.py:
the same frames, names and directory), so a restart after a crash writes back
what is left with the spool's replay, and the spool's disk cap counts them. The
`(site, day, pv, seq)` key makes a segment replayed twice, or a beacon both in a
segment and in the spool, harmless: stored once.

Group commit: the beacons that arrive while one fsync runs are appended as one
frame and fsynced together by the next one (GroupCommit), in a thread so the
event loop keeps accepting; one fsync serves every request waiting on it.

Once fsynced, the beacons join the writer's in-memory queue in log order; the
writer writes them from memory as in the default mode and reports how many it
has disposed of (written to PostgreSQL, or spooled during an outage), from the
front of the queue. A segment whose beacons are all disposed of is removed; the
segment being appended to is truncated to empty instead. A process holds each of
its segments locked (flock) until then, so no replay takes a segment whose
beacons it still holds in memory; a crash drops the locks, and the next start
(or another worker) replays them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from collector import telemetry
from collector.row import Record
from collector.spool import (Spool, SpoolFull, append_frame, create_locked, encode_batch,
                             encode_frame)

log = logging.getLogger(__name__)

# A segment is rotated past this size. Small enough to be removed soon after its
# beacons are written (the writer keeps up within a batch or two), large enough
# that creating segments (a directory fsync each) stays rare.
SEGMENT_MAX_BYTES = 4 * 2**20


@dataclass
class _Segment:
    fd: int
    path: Path
    size: int
    end: int  # the log position (beacons appended since start) at its end


class Journal:
    """One process's segments. Not thread-safe: GroupCommit makes one call at a
    time, in a thread of its own."""

    def __init__(self, spool: Spool, segment_max_bytes: int = SEGMENT_MAX_BYTES) -> None:
        self._spool = spool
        self._segment_max_bytes = segment_max_bytes
        self._segments: collections.deque[_Segment] = collections.deque()
        self._serial = 0
        self.appended = 0
        self.bytes = 0

    def append(self, records: Sequence[Record], disposed: int) -> float:
        """Drop what `disposed` allows, then append `records` as one frame and
        fsync it; returns the fsync's seconds. Raises SpoolFull when the frame
        would take the spool directory over its cap, OSError when the disk fails
        (the frame then leaves nothing behind)."""
        self.tidy(disposed)
        frame = encode_frame(encode_batch(records))
        used, _files = self._spool.usage()
        if used and used + len(frame) > self._spool.max_bytes:
            raise SpoolFull(f"spool and log hold {used} bytes of {self._spool.max_bytes}")
        segment = self._segments[-1] if self._segments else None
        if segment is None or segment.size >= self._segment_max_bytes:
            self._serial += 1
            fd, path = create_locked(self._spool.directory, self._serial)
            segment = _Segment(fd, path, 0, self.appended)
            self._segments.append(segment)
        seconds = append_frame(segment.fd, frame, segment.size)
        segment.size += len(frame)
        self.bytes += len(frame)
        self.appended += len(records)
        segment.end = self.appended
        return seconds

    def tidy(self, disposed: int) -> None:
        """Remove the segments whose beacons are all disposed of; truncate the
        last one to empty if its beacons are too."""
        while self._segments and self._segments[0].end <= disposed:
            segment = self._segments[0]
            if len(self._segments) == 1:
                if segment.size:
                    # Not fsynced: should the truncation be lost in a crash, the
                    # next start replays stored beacons, which the key ignores.
                    os.ftruncate(segment.fd, 0)
                    self.bytes -= segment.size
                    segment.size = 0
                return
            segment.path.unlink(missing_ok=True)
            os.close(segment.fd)  # releases the lock
            self.bytes -= segment.size
            self._segments.popleft()

    def close(self, disposed: int | None) -> None:
        """Stop: remove what is disposed of (everything, unless `disposed` is None:
        the count is lost); the other segments stay, unlocked, for the next
        start's replay."""
        if disposed is not None:
            self.tidy(disposed)
        for segment in self._segments:
            if segment.size == 0 and disposed is not None and segment.end <= disposed:
                segment.path.unlink(missing_ok=True)
            os.close(segment.fd)
        self._segments.clear()


class GroupCommit:
    """Beacons in, answers out once they are fsynced: one append and one fsync
    for all the beacons that arrived during the previous one."""

    def __init__(self, journal: Journal, on_synced: Callable[[list[Record]], None]) -> None:
        self._journal = journal
        self._on_synced = on_synced
        self._records: list[Record] = []
        self._futures: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        # Beacons given to commit() and not answered yet: the writer counts them
        # with its queue, which bounds both together.
        self.unanswered = 0
        # Beacons disposed of by the writer, from the front of the log; None once
        # a count was lost (a batch dropped): then nothing more is removed.
        self._disposed: int | None = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="binome-group-commit")

    async def commit(self, record: Record) -> None:
        """Returns once `record` is fsynced and queued; raises SpoolFull or the
        failure of the append."""
        if self._task is None or self._task.done():
            raise RuntimeError("the durable log is not running")
        future = asyncio.get_running_loop().create_future()
        self._records.append(record)
        self._futures.append(future)
        self._wake.set()
        self.unanswered += 1
        try:
            await future
        finally:
            self.unanswered -= 1

    def disposed(self, count: int) -> None:
        """The writer has written or spooled the next `count` beacons of the log."""
        if self._disposed is not None:
            self._disposed += count
            self._wake.set()

    def lose_count(self) -> None:
        """The writer dropped beacons: from now on every segment is kept (replayed
        at the next start)."""
        self._disposed = None

    async def stop(self) -> None:
        """Answer who waits, then stop; the segments are closed by close()."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def close(self) -> None:
        await asyncio.to_thread(self._journal.close, self._disposed)
        telemetry.DURABLE_LOG_BYTES.set(self._journal.bytes)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            records, futures = self._records, self._futures
            self._records, self._futures = [], []
            disposed = self._disposed
            if records:
                await self._append(records, futures, disposed)
            elif disposed is not None:
                try:
                    await asyncio.to_thread(self._journal.tidy, disposed)
                except OSError:
                    log.exception("removing a stored log segment failed")
            telemetry.DURABLE_LOG_BYTES.set(self._journal.bytes)
            if self._stopping and not self._records:
                return

    async def _append(self, records: list[Record], futures: list[asyncio.Future[None]],
                      disposed: int | None) -> None:
        try:
            # A lost count (None) removes nothing: tidy(-1) keeps every segment.
            seconds = await asyncio.to_thread(
                self._journal.append, records, -1 if disposed is None else disposed)
        except Exception as exc:  # SpoolFull, a disk error, a bug: each request says 503
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        telemetry.DURABLE_FSYNC_SECONDS.observe(seconds)
        telemetry.DURABLE_GROUP_BEACONS.observe(len(records))
        # Queued in log order, before any answer: the writer's count of disposed
        # beacons then follows the log.
        self._on_synced(records)
        for future in futures:
            if not future.done():
                future.set_result(None)
