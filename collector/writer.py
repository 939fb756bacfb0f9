"""The writer: accepted beacons wait in a bounded in-memory queue and are written
to PostgreSQL in batches (collector/store.py); what PostgreSQL cannot take right
now goes to the disk spool (collector/spool.py) and is replayed once it answers
again (collector/replay.py).

A batch is flushed when it holds `batch_max_rows` beacons or when its oldest
beacon has waited `batch_max_ms`. A batch PostgreSQL refuses for its data is
dealt with by the store (row by row, dead letters). Any other failure
(PostgreSQL stopped, connection lost, read-only after a failover, disk full, a
timeout) sends the batch to the spool and the writer enters *spooling*: every
later batch goes to the spool behind it, so beacons reach PostgreSQL in the
order they were accepted and the queue keeps draining at disk speed; once the
replay has emptied the spool, batches go straight to PostgreSQL again.

When the spool is full too, the queue fills and POST /beacon answers 503: memory
holds at most `queue_max` beacons (the batch being written included), plus what
a replay reads back for one write (replay.REPLAY_BATCH_ROWS). On stop the queue
is flushed to PostgreSQL or to the spool (allowed past its cap by at most that
one queue), never dropped unless the disk itself fails.

With BINOME_DURABLE=true (issue 23), a beacon joins the queue only once it is in
the fsynced durable log (collector/journal.py), and the writer tells the log
what it has written or spooled so that the log drops it; a crash then loses
nothing answered 204: the next start replays what the log holds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from collector import store, telemetry
from collector.journal import GroupCommit, Journal
from collector.rejections import REJECTIONS
from collector.replay import SpoolReplay
from collector.row import Record
from collector.spool import Spool, SpoolFull

log = logging.getLogger(__name__)


# Behind by more than a batch, the writer writes up to this many batches at once:
# each write waits on the event loop a dozen times, and under load each wait is a
# turn of a loop busy answering beacons, so larger writes keep up where more
# writes could not (docs/performance.md). Bounded, because a write with the fold
# inline (BINOME_DEFERRED_FOLD off) holds the fold lock for its page views, and a
# shutdown write must fit in SHUTDOWN_WRITE_TIMEOUT_S.
CATCH_UP_FACTOR = 16
# The per-minute counters (rum.ingest_health) go out with a write at most this
# often, and on a timer this long after the last flush when no write comes (a
# burst's last second, rejected beacons only): one statement a second, not one a
# batch, and the view at most about this far behind (issue 20: within 2 s).
COUNTS_FLUSH_S = 1.0
# A write that takes longer than this is abandoned and its batch spooled; at
# shutdown the limit is shorter, so SIGTERM ends in seconds whatever PostgreSQL does.
WRITE_TIMEOUT_S = 30.0
SHUTDOWN_WRITE_TIMEOUT_S = 5.0


class BeaconWriter:
    def __init__(self, database_url: str, *, batch_max_rows: int, batch_max_ms: int,
                 queue_max: int, spool: Spool, retry_max_s: float = 1.0,
                 on_written: Callable[[], None] | None = None,
                 before_first_write: Callable[[], Awaitable[object]] | None = None,
                 durable: bool = False) -> None:
        self._database_url = database_url
        # Given (migrations deferred: PostgreSQL was down at start), awaited before
        # the first write; until it succeeds, writes fail and batches are spooled.
        self._before_first_write = before_first_write
        self._first_write_lock = asyncio.Lock()
        # Given (the collector's folder), page views are queued to be folded
        # behind the writes, and on_written called after each (collector/folder.py).
        self._on_written = on_written
        self._batch_max_rows = batch_max_rows
        self._counts_flushed_at = 0.0
        self._batch_max_s = batch_max_ms / 1000
        self._queue_max = queue_max
        self._spool = spool
        self._pending: collections.deque[Record] = collections.deque()
        self._oldest_at = 0.0
        self._has_data = asyncio.Event()
        self._batch_full = asyncio.Event()
        # Held while this process's spool file changes hands (append, seal), so the
        # replay task never seals a file between a decision and an append.
        self._spool_lock = asyncio.Lock()
        self._closing = False
        self._spooling = False
        self._spool_full = False
        self._spool_error: str | None = None
        self._durable = durable
        self._durable_log: GroupCommit | None = None
        self._log_full = False
        self._log_error: str | None = None
        self._failing_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        self._known_days: set[dt.date] = set()
        self._replay = SpoolReplay(
            spool, self._spool_lock, write=self._write_in_time, batch_rows=batch_max_rows,
            retry_max_s=retry_max_s, note_failure=self._note_failure,
            closing=lambda: self._closing, drained=self._spool_drained)
        self.last_write_ok: float | None = None
        self.last_error: str | None = None

    # -- the route's side -------------------------------------------------

    def offer(self, record: Record) -> bool:
        """Queue one beacon row; False when the queue is full (the spool being full
        too, or PostgreSQL not keeping up) or the collector is stopping: 503."""
        if self._closing or len(self._pending) >= self._queue_max:
            return False
        if not self._pending:
            self._oldest_at = time.monotonic()
            self._has_data.set()
        self._pending.append(record)
        if len(self._pending) >= self._batch_max_rows:
            self._batch_full.set()
        return True

    async def offer_durably(self, record: Record) -> bool:
        """BINOME_DURABLE=true: True once the beacon is in the fsynced log and
        queued; False (503) as offer(), or when the log cannot take it (its disk
        full or failing)."""
        durable_log = self._durable_log
        if (durable_log is None or self._closing
                or len(self._pending) + durable_log.unanswered >= self._queue_max):
            return False
        try:
            await durable_log.commit(record)
        except SpoolFull:
            if not self._log_full:
                log.warning("durable log full: POST /beacon answers 503",
                            extra={"spool_max_bytes": self._spool.max_bytes})
                self._log_full = True
            return False
        except Exception as exc:  # the disk failed (or a bug): 503, never 500
            message = store.describe(exc)
            if message != self._log_error:
                log.error("durable log write failed", extra={
                    "error": message, "spool_dir": str(self._spool.directory)})
            self._log_error = message
            return False
        if self._log_full or self._log_error is not None:
            log.info("durable log takes beacons again")
            self._log_full = False
            self._log_error = None
        return True

    def _queue_synced(self, records: list[Record]) -> None:
        """The log's fsynced beacons, queued in log order (offer_durably counted them
        against queue_max while they waited for their fsync)."""
        if not self._pending:
            self._oldest_at = time.monotonic()
            self._has_data.set()
        self._pending.extend(records)
        if len(self._pending) >= self._batch_max_rows:
            self._batch_full.set()

    @property
    def durable(self) -> bool:
        return self._durable

    @property
    def depth(self) -> int:
        return len(self._pending)

    @property
    def full(self) -> bool:
        return len(self._pending) >= self._queue_max

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def spooling(self) -> bool:
        return self._spooling

    @property
    def spool_full(self) -> bool:
        return self._spool_full or self._log_full

    def spool_usage(self) -> tuple[int, int]:
        return self._spool.usage()

    def unready_reason(self) -> str | None:
        """Why this process cannot promise to keep a beacon now, or None."""
        if self._closing:
            return "shutting down"
        if self._spool_full:
            used, _files = self._spool.usage()
            return (f"spool full ({used} of {self._spool.max_bytes} bytes) while writes fail"
                    f" ({self.last_error or self._spool_error}); the queue holds"
                    f" {self.depth} of {self._queue_max} beacons")
        if self._spool_error is not None:
            return f"spool unwritable: {self._spool_error}"
        if self._log_full:
            used, _files = self._spool.usage()
            return f"durable log full ({used} of {self._spool.max_bytes} bytes with the spool)"
        if self._log_error is not None:
            return f"durable log unwritable: {self._log_error}"
        if self.full:
            return f"write queue full ({self._queue_max} beacons)"
        if self._spooling and self.last_error is not None:
            used, files = self._spool.usage()
            return (f"database writes failing ({self.last_error}); spooling to disk"
                    f" ({used} bytes in {files} files)")
        return None

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        # A writer started again in this process (the tests) starts from zero: what an
        # earlier one could not flush was counted for its own database.
        telemetry.INGEST_COUNTS.clear()
        REJECTIONS.clear()
        await asyncio.to_thread(self._spool.open)
        if self._durable:
            self._durable_log = GroupCommit(Journal(self._spool), self._queue_synced)
        self._pool = await asyncpg.create_pool(
            self._database_url, min_size=0, max_size=2, init=store.prepare_connection,
            timeout=5,  # connect timeout: a blackholed server must not stall the flusher
            server_settings={"application_name": "binome-writer", "statement_timeout": "60s",
                             **({"binome.defer_fold": "on"} if self._on_written else {})},
        )
        used, files = self._spool.usage()
        if files:
            # What an earlier run spooled is written before anything this run accepts.
            self._spooling = True
            log.info("spool found at start, replaying it first",
                     extra={"spool_bytes": used, "spool_files": files})
        telemetry.SPOOL_MAX_BYTES.set(self._spool.max_bytes)
        telemetry.QUEUE_CAPACITY.set(self._queue_max)
        telemetry.SPOOLING.set(int(self._spooling))
        telemetry.set_spool_usage(*self._spool.usage())
        self._task = asyncio.create_task(self._run(), name="binome-writer")
        self._replay.start()
        if self._durable_log is not None:
            self._durable_log.start()

    async def stop(self) -> None:
        """Stop taking beacons, write or spool what is queued, then close."""
        self._closing = True
        if self._durable_log is not None:
            # The beacons it fsyncs now are queued before the flusher's last round.
            await self._durable_log.stop()
        self._has_data.set()
        self._batch_full.set()
        if self._task is not None:
            await self._task
        await self._replay.stop(SHUTDOWN_WRITE_TIMEOUT_S)
        async with self._spool_lock:
            self._spool.close()
        if self._durable_log is not None:
            await self._durable_log.close()
        self._replay.finish_run(stopping=True)
        if self.last_error is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_counts(), SHUTDOWN_WRITE_TIMEOUT_S)
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), SHUTDOWN_WRITE_TIMEOUT_S)
            except TimeoutError:
                self._pool.terminate()
        telemetry.QUEUE_DEPTH.set(len(self._pending))
        telemetry.set_spool_usage(*self._spool.usage())

    async def ping(self, timeout: float = 2.0) -> None:
        assert self._pool is not None
        async with self._pool.acquire(timeout=timeout) as conn:
            await conn.fetchval("SELECT 1", timeout=timeout)

    # -- the flusher: queue -> PostgreSQL or spool ------------------------------

    async def _run(self) -> None:
        loop_time = time.monotonic
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._has_data.clear()
                try:
                    async with asyncio.timeout(self._idle_wait()):
                        await self._has_data.wait()
                except TimeoutError:
                    await self._idle_tick()
                continue
            deadline = self._oldest_at + self._batch_max_s
            while len(self._pending) < self._batch_max_rows and not self._closing:
                remaining = deadline - loop_time()
                if remaining <= 0:
                    break
                self._batch_full.clear()
                try:
                    async with asyncio.timeout(remaining):
                        await self._batch_full.wait()
                except TimeoutError:
                    break
            # The batch stays in the queue until it is written or spooled, so the
            # queue's bound is the bound on beacons in memory.
            # A writer that fell behind (the event loop busy answering beacons,
            # PostgreSQL slow for a moment) catches up with larger writes: each
            # write costs the same few round trips whatever its size.
            take = min(len(self._pending), self._batch_max_rows * CATCH_UP_FACTOR)
            batch = list(itertools.islice(self._pending, take))
            try:
                kept = await self._dispose(batch)
            except Exception:  # a bug must not stop the flusher: the batch is retried
                log.exception("flushing a batch failed unexpectedly")
                await asyncio.sleep(1.0)
                continue
            for _ in range(take):
                self._pending.popleft()
            if self._durable_log is not None:
                if kept:
                    self._durable_log.disposed(take)
                else:
                    self._durable_log.lose_count()
            if self._pending:
                self._oldest_at = loop_time()
            telemetry.QUEUE_DEPTH.set(len(self._pending))

    def _idle_wait(self) -> float:
        """Seconds until the counters are due, or a second while writes fail."""
        if self.last_error is not None:
            return 1.0
        due = self._counts_flushed_at + COUNTS_FLUSH_S - time.monotonic()
        return min(COUNTS_FLUSH_S, max(0.0, due))

    async def _idle_tick(self) -> None:
        telemetry.QUEUE_DEPTH.set(len(self._pending))
        if self.last_error is None:
            await self._flush_counts()

    async def _dispose(self, batch: list[Record]) -> bool:
        """Write or spool the batch; False when it was dropped."""
        if not self._spooling:
            timeout = SHUTDOWN_WRITE_TIMEOUT_S if self._closing else WRITE_TIMEOUT_S
            try:
                await asyncio.wait_for(self.write_batch(batch), timeout)
                return True
            except Exception as exc:  # write_batch raises only what it could not place
                self._note_failure(exc)
                self._spooling = True
                telemetry.SPOOLING.set(1)
        return await self._spool_batch(batch)

    async def _spool_batch(self, batch: list[Record]) -> bool:
        delay = 0.05
        while True:
            try:
                async with self._spool_lock:
                    await asyncio.to_thread(self._spool.append, batch, over_cap=self._closing)
            except SpoolFull:
                if not self._spool_full:
                    log.warning("spool full: the queue fills, then POST /beacon answers 503",
                                extra={"spool_max_bytes": self._spool.max_bytes})
                    self._spool_full = True
            except OSError as exc:
                message = store.describe(exc)
                if message != self._spool_error:
                    log.error("spool write failed", extra={"error": message,
                                                           "spool_dir": str(self._spool.directory)})
                self._spool_error = message
                if self._closing:
                    telemetry.DROPPED.inc(len(batch))
                    log.error("beacons dropped: neither PostgreSQL nor the spool could take them"
                              + (" (the durable log keeps them for the next start)"
                                 if self._durable_log is not None else ""),
                              extra={"beacons": len(batch)})
                    return False
            else:
                telemetry.SPOOLED.inc(len(batch))
                if self._spool_full or self._spool_error is not None:
                    log.info("spool takes batches again")
                self._spool_full = False
                self._spool_error = None
                self._replay.wake()
                telemetry.set_spool_usage(*self._spool.usage())
                return True
            telemetry.set_spool_usage(*self._spool.usage())
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _spool_drained(self) -> None:
        if self._spooling:
            self._spooling = False
            telemetry.SPOOLING.set(0)

    def _note_failure(self, exc: BaseException) -> None:
        message = store.describe(exc)
        if self.last_error is None:
            self._failing_since = time.monotonic()
            log.warning("database writes failing: spooling batches to disk",
                        extra={"error": message})
        elif message != self.last_error:
            log.warning("database writes still failing", extra={"error": message})
        self.last_error = message
        telemetry.WRITE_ERRORS.inc()

    def _note_success(self) -> None:
        self.last_write_ok = time.time()
        telemetry.LAST_WRITE.set(self.last_write_ok)
        if self.last_error is not None:
            seconds = time.monotonic() - (self._failing_since or time.monotonic())
            log.info("database writes succeed again",
                     extra={"failed_for_seconds": round(seconds, 3)})
            self.last_error = None
            self._failing_since = None

    # -- one batch ----------------------------------------------------------------

    async def write_batch(self, batch: Sequence[Record]) -> int:
        """Write one batch; returns the rows inserted (resends are not counted).

        Rows with wrong data go to binome.dead_letters; any other failure is
        raised, the batch untouched, for the caller to spool or retry.
        """
        assert self._pool is not None
        if self._before_first_write is not None:
            async with self._first_write_lock:
                if self._before_first_write is not None:
                    await self._before_first_write()
                    self._before_first_write = None
        started = time.perf_counter()
        async with self._pool.acquire() as conn:
            rows_by_site = await store.write_batch(conn, batch, self._known_days)
            written = sum(rows_by_site.values())
            # Counted as soon as committed: a failure below must not lose the
            # count of rows that are in the table.
            telemetry.BATCHES.inc()
            telemetry.ROWS_WRITTEN.inc(written)
            for site, rows in rows_by_site.items():
                telemetry.INGEST_COUNTS.add(site, rows_written=rows)
            if time.monotonic() - self._counts_flushed_at >= COUNTS_FLUSH_S:
                await self._flush_counts(conn)
        telemetry.WRITE_SECONDS.observe(time.perf_counter() - started)
        self._note_success()
        if written and self._on_written is not None:
            self._on_written()
        return written

    async def _write_in_time(self, batch: list[Record]) -> None:
        await asyncio.wait_for(self.write_batch(batch), WRITE_TIMEOUT_S)

    async def _flush_counts(self, conn: asyncpg.Connection | None = None) -> None:
        self._counts_flushed_at = time.monotonic()
        taken = telemetry.INGEST_COUNTS.take()
        refused = REJECTIONS.take()  # rum.ingest_rejections (issue 24), in the same flush
        if not taken and not refused:
            return
        try:
            if conn is None:
                if self._pool is None:
                    raise ConnectionError("writer not started")
                async with self._pool.acquire(timeout=5) as own:
                    await self._write_counts(own, taken, refused)
            else:
                await self._write_counts(conn, taken, refused)
        except Exception:  # counters wait for the next write, whatever the failure
            telemetry.INGEST_COUNTS.put_back(taken)
            REJECTIONS.put_back(refused)

    @staticmethod
    async def _write_counts(conn: asyncpg.Connection, taken: list[tuple[str, int, list[int]]],
                            refused: list[tuple[int, str, str, str, int]]) -> None:
        async with conn.transaction():
            if taken:
                await store.write_counts(conn, taken)
            if refused:
                await store.write_rejections(conn, refused)
