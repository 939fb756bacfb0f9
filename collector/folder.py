"""The folder: folds the page views the writer queued, right behind it.

The writer stores beacons and, in the same transaction, queues the page views
they belong to (sql/functions/30_fold.sql: its connections set binome.defer_fold).
Folding them into binome.page_views, which the analyst views read, costs
PostgreSQL several times what storing them does; done here, on its own
connection and in sets of up to FOLD_SET page views, it no longer paces
ingest. The writer wakes the folder after each write; it also looks every
IDLE_S for page views another process queued (a collector that stopped before
folding them: `binome maintain` folds those too).

Ingest comes first. During a burst the fold would take a whole PostgreSQL
core, which on a machine that PostgreSQL shares with the collector is the
collector's own core (docs/performance.md). So while the writer keeps
writing, the folder folds at most `share` of the time (the pause after a fold
is what keeps it there), as long as the views are less than `max_lag` seconds
behind the beacons; further behind, it folds without pausing until it has
caught up. Once the writes stop, it folds without pausing too. Under a light
load a fold takes milliseconds and the pause is shorter than the time to the
next write: the views follow the beacons within a second.

One folder folds for every collector of a database: the others stand by
(a session advisory lock; the fold itself is serialised by the fold lock of
sql/functions/30_fold.sql anyway), so two workers or two machines do not fold twice
as much of the time, and when the folding one stops, another takes over
within IDLE_S.

A fold interrupted (shutdown, a lost connection) rolls back: its page views
stay queued for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg

from collector import db, telemetry

log = logging.getLogger(__name__)

# Page views folded per transaction: large enough that a page view's later
# beacons (seq 1 at pagehide) mostly join it, small enough that one fold holds
# the fold lock well under a second.
FOLD_SET = 5000
IDLE_S = 2.0
FOLD_SHARE = 0.25
# Held by the one folder that folds (pg_try_advisory_lock): 'binome.folder'.
FOLDER_LOCK = 7020508655466053940
RETRY_MAX_S = 5.0
SHUTDOWN_FOLD_S = 5.0


async def fold_set(conn: asyncpg.Connection, limit: int = FOLD_SET) -> tuple[int, float | None]:
    """Fold one set of at most `limit` queued page views: (how many, how long the
    oldest of them had waited in seconds), the wait None once the queue is empty."""
    row = await conn.fetchrow("SELECT folded, oldest FROM binome.fold_queued($1)", limit)
    folded = row["folded"]
    telemetry.PAGE_VIEWS_FOLDED.inc(folded)
    if folded < limit:
        telemetry.FOLD_LAG.set(0)
        return folded, None
    lag = row["oldest"].total_seconds() if row["oldest"] is not None else 0.0
    telemetry.FOLD_LAG.set(lag)
    return folded, lag


async def fold_queue(conn: asyncpg.Connection, *, limit: int = FOLD_SET,
                     max_rounds: int | None = None) -> int:
    """Fold queued page views until the queue is empty (or max_rounds sets);
    returns how many were folded."""
    total = 0
    rounds = 0
    while max_rounds is None or rounds < max_rounds:
        folded, lag = await fold_set(conn, limit)
        rounds += 1
        total += folded
        if lag is None:
            break
    return total


class PageViewFolder:
    def __init__(self, database_url: str, *, max_lag: float = 60.0,
                 share: float = FOLD_SHARE, set_size: int = FOLD_SET) -> None:
        """max_lag: seconds behind the beacons from which the folder folds without
        pausing (0: it never pauses); share: the part of the time it folds until then."""
        self._database_url = database_url
        self._set_size = set_size
        self._max_lag = max_lag
        self._pause_per_second_folded = (1 - share) / share if max_lag > 0 else 0.0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._writes = 0  # notify() calls: the writer is busy while they go up
        self.folded = 0  # page views this folder folded
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Page views were queued: fold them."""
        self._writes += 1
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="binome-folder")

    async def stop(self) -> None:
        """Fold what the writer queued last, for at most SHUTDOWN_FOLD_S (what is
        left stays queued for the next collector or `binome maintain`), then close."""
        self._stopping.set()
        self._wake.set()
        if self._task is None:
            return
        try:
            async with asyncio.timeout(SHUTDOWN_FOLD_S):
                await asyncio.shield(self._task)
        except TimeoutError:
            log.warning("page views left to fold at shutdown")
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        conn: asyncpg.Connection | None = None
        leading = False  # holds FOLDER_LOCK on conn
        backoff = 0.1
        pause = 0.0  # the rest the last fold earned before the next may start
        try:
            while True:
                if not self._stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(IDLE_S):
                            await self._wake.wait()
                    if pause:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(pause):
                                await self._stopping.wait()
                self._wake.clear()
                stopping = self._stopping.is_set()  # the writer has written its last batch
                try:
                    if conn is None or conn.is_closed():
                        conn = await db.connect(self._database_url, "binome-folder")
                        leading = False
                    if not leading:
                        leading = await conn.fetchval("SELECT pg_try_advisory_lock($1)",
                                                      FOLDER_LOCK)
                    if not leading:
                        # Another collector's folder folds this database's queue,
                        # this one's writes included; ask again in IDLE_S.
                        if stopping:
                            return
                        pause = IDLE_S
                        continue
                    started = time.perf_counter()
                    writes_before = self._writes
                    if stopping:  # the whole queue, without pauses
                        folded, lag = await fold_queue(conn, limit=self._set_size), None
                    else:
                        folded, lag = await fold_set(conn, self._set_size)
                    took = time.perf_counter() - started
                    self.folded += folded
                    if folded:
                        telemetry.FOLD_SECONDS.observe(took)
                    writing = self._writes != writes_before
                    behind = lag is not None and lag >= self._max_lag
                    pause = took * self._pause_per_second_folded if writing and not behind else 0.0
                    if lag is not None:
                        self._wake.set()  # the queue was not emptied: fold again
                    backoff = 0.1
                except Exception as exc:  # the page views stay queued; try again
                    log.warning("fold failed", extra={"error": f"{type(exc).__name__}: {exc}"})
                    if conn is not None:
                        conn.terminate()
                        conn = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, RETRY_MAX_S)
                    self._wake.set()
                    continue
                if stopping:
                    return
        finally:
            if conn is not None:
                conn.terminate()
