"""The writer: accepted beacons wait in a bounded in-memory queue and are written
to PostgreSQL in batches with COPY; what PostgreSQL cannot take right now goes to
the disk spool (collector/spool.py) and is replayed once it answers again.

A batch is flushed when it holds `batch_max_rows` beacons or when its oldest
beacon has waited `batch_max_ms`. Each batch is COPY'd into a per-connection
temporary table, then moved into binome.beacons by one INSERT ... SELECT that
honours the idempotency key (site, pv, seq): the primary key catches a resend in
the same daily partition, and a NOT EXISTS over the two days either side catches
the rare resend whose partition day differs (see enrich.page_view_day). A replay
of a batch that was in fact written therefore stores nothing twice.

Errors come in two kinds:
  * the data is wrong (SQLSTATE classes 22 and 23, 54000, or a value asyncpg
    cannot encode): the batch is written again row by row, so one bad row never
    loses the rest; the rows PostgreSQL refuses go to binome.dead_letters with
    their error;
  * anything else (PostgreSQL stopped, connection lost, read-only after a
    failover, disk full, a timeout): the batch goes to the spool and the writer
    enters *spooling*: every later batch goes to the spool behind it, so beacons
    reach PostgreSQL in the order they were accepted, and the in-memory queue keeps
    draining at disk speed. A replay task writes the spool's files back, oldest
    first, retrying with backoff; once the spool is empty, batches go straight to
    PostgreSQL again.

When the spool is full too, the queue fills and POST /beacon answers 503: memory
holds at most `queue_max` beacons (the batch being written included), plus what
a replay reads back from the spool for one write (REPLAY_BATCH_ROWS). On stop
the queue is flushed to PostgreSQL or to the spool (allowed past its cap by at
most that one queue), never dropped unless the disk itself fails.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import asyncpg
import orjson
from asyncpg.exceptions import _base as asyncpg_base

from collector import telemetry
from collector.row import COLUMNS, T0_MAX_AGE_DAYS, Record
from collector.spool import Spool, SpoolFile, SpoolFull

log = logging.getLogger(__name__)

Record = tuple[Any, ...]

_DAY = COLUMNS.index("day")
# A resend's t0 may put it at most this far from the day it was first stored on
# (_MOVE lists the days in between).
_RESEND_DAYS = dt.timedelta(days=T0_MAX_AGE_DAYS)
_SITE = COLUMNS.index("site")

# How often the replay task looks for spool files left by other processes (a
# worker that died, the previous run) when nothing wakes it.
SCAN_INTERVAL_S = 2.0
# Behind by more than a batch, the writer writes up to this many batches at once.
# A write waits on the event loop a dozen times (acquire, COPY, INSERT, COMMIT...),
# and under load each wait is a turn of a loop busy answering beacons: at 4
# batches (2,000 rows) that waiting capped the writer near 11,000 beacons a
# second on the bench machine, and the queue filled (503) while the cores had
# time to spare; at 16 it kept up (docs/performance.md). Bounded, because a
# write with the fold inline (BINOME_DEFERRED_FOLD off) holds the fold lock for
# its page views, and a shutdown write must fit in SHUTDOWN_WRITE_TIMEOUT_S.
CATCH_UP_FACTOR = 16
# A COPY lets the event loop answer beacons between slices of this many rows.
COPY_SLICE_ROWS = 500
# The per-minute counters (rum.ingest_health) go out with a write at most this
# often, and when the writer is idle: one statement a second, not one a batch.
COUNTS_FLUSH_S = 1.0
# A write that takes longer than this is abandoned and its batch spooled; at
# shutdown the limit is shorter, so SIGTERM ends in seconds whatever PostgreSQL does.
WRITE_TIMEOUT_S = 30.0
SHUTDOWN_WRITE_TIMEOUT_S = 5.0
# A replay joins spooled batches into writes of this many rows (or
# BATCH_MAX_ROWS if larger): the memory a replay holds.
REPLAY_BATCH_ROWS = 2000

# binome.beacon_columns has binome.beacons' columns and no row: the binome_writer
# role may read it, not the stored beacons (sql/views/00_beacon_columns.sql).
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS incoming_beacons"
    " (LIKE binome.beacon_columns) ON COMMIT DELETE ROWS"
)
_MOVE = """
WITH inserted AS (
    INSERT INTO binome.beacons
    SELECT DISTINCT ON (i.site, i.pv, i.seq) i.*
    FROM incoming_beacons i
    -- A resend whose t0 put it on another day (±2) is already stored there. The
    -- days are listed, not a range around i.day, so each beacon is one index
    -- probe per neighbouring day; $1..$2 (the batch's days ±2) leave the other
    -- partitions out of the plan. As `BETWEEN i.day - 2 AND i.day + 2` it was a
    -- hash anti join over every partition: 14 s a batch at 18 million beacons.
    WHERE NOT EXISTS (
        SELECT 1 FROM binome.beacons b
        WHERE b.site = i.site AND b.pv = i.pv AND b.seq = i.seq
          AND b.day = ANY (ARRAY[i.day - 2, i.day - 1, i.day + 1, i.day + 2])
          AND b.day BETWEEN $1::date AND $2::date)
    ORDER BY i.site, i.pv, i.seq, i.received_at
    ON CONFLICT DO NOTHING
    RETURNING site
)
SELECT site, count(*)::int AS n FROM inserted GROUP BY site
"""
_COUNT_UPSERT = """
INSERT INTO binome.ingest_counts AS c (site, minute, received, accepted, rejected, rows_written)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
ON CONFLICT (site, minute) DO UPDATE SET
    received = c.received + excluded.received,
    accepted = c.accepted + excluded.accepted,
    rejected = c.rejected + excluded.rejected,
    rows_written = c.rows_written + excluded.rows_written
"""


# SQLSTATEs that mean "this row is wrong", not "PostgreSQL cannot write now":
# class 22 data exception, class 23 integrity constraint violation, and 54000
# (an index row too big for its value). Anything else, even from PostgreSQL
# (read-only transaction 25006 after a failover, disk full 53100, permission
# denied 42501), would refuse every row alike: dead-lettering them would empty
# the pipeline into a side table, so those batches are spooled and retried.
_DATA_SQLSTATE_CLASSES = ("22", "23")
_DATA_SQLSTATES = ("54000",)


def is_data_error(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg_base.DataError):  # a value asyncpg cannot encode
        return True
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return sqlstate[:2] in _DATA_SQLSTATE_CLASSES or sqlstate in _DATA_SQLSTATES
    return False


def _describe(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"


class IngestCounts:
    """Per-minute, per-site counters (rum.ingest_health), flushed with the batches."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], list[int]] = collections.defaultdict(
            lambda: [0, 0, 0, 0]
        )

    def add(self, site: str, *, received: int = 0, accepted: int = 0, rejected: int = 0,
            rows_written: int = 0, at: float | None = None) -> None:
        minute = int((time.time() if at is None else at) // 60)
        counts = self._counts[(site, minute)]
        counts[0] += received
        counts[1] += accepted
        counts[2] += rejected
        counts[3] += rows_written

    def take(self) -> list[tuple[str, int, list[int]]]:
        taken = [(site, minute, counts) for (site, minute), counts in self._counts.items()]
        self._counts.clear()
        return taken

    def put_back(self, taken: list[tuple[str, int, list[int]]]) -> None:
        for site, minute, (received, accepted, rejected, rows) in taken:
            self.add(site, received=received, accepted=accepted, rejected=rejected,
                     rows_written=rows, at=minute * 60)


class _ReplayStopped(Exception):
    """The writer is stopping: the file being replayed waits for the next start."""


class _ReplayRun:
    """One stretch of replaying, from the first file claimed to an empty spool."""

    def __init__(self) -> None:
        self.files = 0
        self.rows = 0
        self.first_write_at: float | None = None


class BeaconWriter:
    def __init__(self, database_url: str, *, batch_max_rows: int, batch_max_ms: int,
                 queue_max: int, spool: Spool, retry_max_s: float = 1.0,
                 on_written: Callable[[], None] | None = None) -> None:
        self._database_url = database_url
        # Given (the collector's folder), page views are queued to be folded
        # behind the writes, and on_written called after each (0007).
        self._on_written = on_written
        self._batch_max_rows = batch_max_rows
        self._counts_flushed_at = 0.0
        self._batch_max_s = batch_max_ms / 1000
        self._queue_max = queue_max
        self._spool = spool
        self._retry_max_s = retry_max_s
        self._pending: collections.deque[Record] = collections.deque()
        self._oldest_at = 0.0
        self._has_data = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._replay_wanted = asyncio.Event()
        # Held while this process's spool file changes hands (append, seal), so the
        # replay task never seals a file between a decision and an append.
        self._spool_lock = asyncio.Lock()
        self._closing = False
        self._spooling = False
        self._spool_full = False
        self._spool_error: str | None = None
        self._failing_since: float | None = None
        self._replay_run: _ReplayRun | None = None
        self._task: asyncio.Task[None] | None = None
        self._replayer: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        self._known_days: set[dt.date] = set()
        self.counts = IngestCounts()
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
        return self._spool_full

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
        if self.full:
            return f"write queue full ({self._queue_max} beacons)"
        if self._spooling and self.last_error is not None:
            used, files = self._spool.usage()
            return (f"database writes failing ({self.last_error}); spooling to disk"
                    f" ({used} bytes in {files} files)")
        return None

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._spool.open)
        self._pool = await asyncpg.create_pool(
            self._database_url, min_size=0, max_size=2, init=_prepare_connection,
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
        self._update_spool_gauges()
        self._task = asyncio.create_task(self._run(), name="binome-writer")
        self._replayer = asyncio.create_task(self._replay_loop(), name="binome-replay")

    async def stop(self) -> None:
        """Stop taking beacons, write or spool what is queued, then close."""
        self._closing = True
        self._has_data.set()
        self._batch_full.set()
        if self._task is not None:
            await self._task
        if self._replayer is not None:
            # A file being replayed stays in the spool: replayed again next time,
            # which the idempotency key makes harmless. The replay task also checks
            # `_closing`, in case the cancellation lands where it could be lost.
            self._replayer.cancel()
            done, _pending = await asyncio.wait({self._replayer}, timeout=SHUTDOWN_WRITE_TIMEOUT_S)
            if not done:
                log.error("spool replay did not stop; leaving it")
        async with self._spool_lock:
            self._spool.close()
        self._finish_replay_run(stopping=True)
        if self.last_error is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_counts(), SHUTDOWN_WRITE_TIMEOUT_S)
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), SHUTDOWN_WRITE_TIMEOUT_S)
            except TimeoutError:
                self._pool.terminate()
        telemetry.QUEUE_DEPTH.set(len(self._pending))
        self._update_spool_gauges()

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
                    async with asyncio.timeout(1.0):
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
                await self._dispose(batch)
            except Exception:  # a bug must not stop the flusher: the batch is retried
                log.exception("flushing a batch failed unexpectedly")
                await asyncio.sleep(1.0)
                continue
            for _ in range(take):
                self._pending.popleft()
            if self._pending:
                self._oldest_at = loop_time()
            telemetry.QUEUE_DEPTH.set(len(self._pending))

    async def _idle_tick(self) -> None:
        telemetry.QUEUE_DEPTH.set(len(self._pending))
        if self.last_error is None:
            await self._flush_counts()

    async def _dispose(self, batch: list[Record]) -> None:
        if not self._spooling:
            timeout = SHUTDOWN_WRITE_TIMEOUT_S if self._closing else WRITE_TIMEOUT_S
            try:
                await asyncio.wait_for(self.write_batch(batch), timeout)
                return
            except Exception as exc:  # write_batch raises only what it could not place
                self._note_failure(exc)
                self._spooling = True
                telemetry.SPOOLING.set(1)
        await self._spool_batch(batch)

    async def _spool_batch(self, batch: list[Record]) -> None:
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
                message = _describe(exc)
                if message != self._spool_error:
                    log.error("spool write failed", extra={"error": message,
                                                           "spool_dir": str(self._spool.directory)})
                self._spool_error = message
                if self._closing:
                    telemetry.DROPPED.inc(len(batch))
                    log.error("beacons dropped: neither PostgreSQL nor the spool could take them",
                              extra={"beacons": len(batch)})
                    return
            else:
                telemetry.SPOOLED.inc(len(batch))
                if self._spool_full or self._spool_error is not None:
                    log.info("spool takes batches again")
                self._spool_full = False
                self._spool_error = None
                self._replay_wanted.set()
                self._update_spool_gauges()
                return
            self._update_spool_gauges()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # -- the replay task: spool -> PostgreSQL -------------------------------------

    async def _replay_loop(self) -> None:
        while not self._closing:
            self._replay_wanted.clear()
            try:
                progressed = await self._replay_step()
            except asyncio.CancelledError:
                raise
            except _ReplayStopped:
                return
            except Exception:
                log.exception("spool replay failed unexpectedly")
                progressed = False
            if not progressed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SCAN_INTERVAL_S):
                        await self._replay_wanted.wait()

    async def _replay_step(self) -> bool:
        """Replay one spool file; False when there was nothing to replay."""
        # Synchronous on purpose (a directory listing and non-blocking flocks): a
        # cancellation must not leave a claimed file locked in a forgotten thread.
        spool_file = self._spool.claim()
        if spool_file is None:
            async with self._spool_lock:
                if self._spool.holds_unsealed:
                    # Our own file is all that is left: seal it so it can be replayed.
                    self._spool.seal()
                    return True
                if self._spooling:
                    self._spooling = False
                    telemetry.SPOOLING.set(0)
            self._finish_replay_run()
            self._update_spool_gauges()
            return False
        if self._replay_run is None:
            self._replay_run = _ReplayRun()
            used, files = self._spool.usage()
            log.info("spool replay started", extra={"spool_bytes": used, "spool_files": files})
        try:
            await self._replay_file(spool_file)
        finally:
            spool_file.release()
        return True

    async def _replay_file(self, spool_file: SpoolFile) -> None:
        run = self._replay_run
        assert run is not None
        replayed = 0
        for batch in _coalesce(spool_file.batches(), max(self._batch_max_rows,
                                                         REPLAY_BATCH_ROWS)):
            await self._write_with_retry(batch)
            if run.first_write_at is None:
                run.first_write_at = time.monotonic()
            replayed += len(batch)
            run.rows += len(batch)
            telemetry.REPLAYED.inc(len(batch))
        run.files += 1
        if spool_file.damage:
            target = spool_file.quarantine()
            telemetry.QUARANTINED.inc()
            log.error("damaged spool file quarantined", extra={
                "file": spool_file.path.name, "moved_to": str(target),
                "damage": [vars(d) for d in spool_file.damage],
                "beacons_replayed": replayed,
            })
        else:
            spool_file.remove()
        self._update_spool_gauges()

    async def _write_with_retry(self, batch: list[Record]) -> None:
        delay = 0.1
        while True:
            try:
                await asyncio.wait_for(self.write_batch(batch), WRITE_TIMEOUT_S)
                return
            except Exception as exc:
                self._note_failure(exc)
                if self._closing:
                    raise _ReplayStopped from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)

    def _finish_replay_run(self, *, stopping: bool = False) -> None:
        run, self._replay_run = self._replay_run, None
        if run is None:
            return
        seconds = time.monotonic() - run.first_write_at if run.first_write_at else 0.0
        used, files = self._spool.usage()
        log.info("spool replay stopped, the rest waits for the next start" if stopping
                 else "spool replay done", extra={
            "files": run.files, "beacons": run.rows, "seconds": round(seconds, 3),
            "beacons_per_second": round(run.rows / seconds) if seconds > 0 else None,
            "spool_bytes_left": used, "spool_files_left": files,
        })

    def _update_spool_gauges(self) -> None:
        used, files = self._spool.usage()
        telemetry.SPOOL_BYTES.set(used)
        telemetry.SPOOL_FILES.set(files)

    def _note_failure(self, exc: BaseException) -> None:
        message = _describe(exc)
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
        started = time.perf_counter()
        async with self._pool.acquire() as conn:
            await self._ensure_partitions(conn, {r[_DAY] for r in batch})
            moved = False
            try:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "incoming_beacons", records=_in_slices(batch), columns=COLUMNS
                    )
                    rows_by_site = dict(await conn.fetch(_MOVE, *_day_bounds(batch)))
                    moved = True
                written = sum(rows_by_site.values())
            except Exception as exc:
                if not is_data_error(exc):
                    if moved:
                        # The COMMIT itself failed: PostgreSQL may have committed
                        # before the connection broke. The batch is resent, so
                        # nothing is lost, but if it had landed the resend inserts
                        # nothing and its rows go uncounted in rows_written. (A
                        # data error at COMMIT is PostgreSQL's answer: rolled back.)
                        log.warning("batch commit outcome unknown: the batch is resent",
                                    extra={"beacons": len(batch), "error": _describe(exc)})
                    raise
                log.warning("batch refused, writing row by row", extra={"error": str(exc)})
                written, rows_by_site = await self._write_rows_one_by_one(conn, batch)
            # Counted as soon as committed: a failure below must not lose the
            # count of rows that are in the table.
            telemetry.BATCHES.inc()
            telemetry.ROWS_WRITTEN.inc(written)
            for site, rows in rows_by_site.items():
                self.counts.add(site, rows_written=rows)
            if time.monotonic() - self._counts_flushed_at >= COUNTS_FLUSH_S:
                await self._flush_counts(conn)
        telemetry.WRITE_SECONDS.observe(time.perf_counter() - started)
        self._note_success()
        if written and self._on_written is not None:
            self._on_written()
        return written

    async def _write_rows_one_by_one(
        self, conn: asyncpg.Connection, batch: Sequence[Record]
    ) -> tuple[int, dict[str, int]]:
        written = 0
        rows_by_site: dict[str, int] = collections.Counter()
        for record in batch:
            try:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "incoming_beacons", records=[record], columns=COLUMNS
                    )
                    for site, inserted in await conn.fetch(_MOVE, *_day_bounds([record])):
                        written += inserted
                        rows_by_site[site] += inserted
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                await self._dead_letter(conn, record, exc)
        return written, rows_by_site

    async def _dead_letter(self, conn: asyncpg.Connection, record: Record,
                           exc: BaseException) -> None:
        error = _describe(exc)
        document = _record_json(record)
        try:
            await conn.execute(
                "INSERT INTO binome.dead_letters (site, error, record) VALUES ($1, $2, $3)",
                record[_SITE], error, document,
            )
        except Exception as letter_exc:
            if not is_data_error(letter_exc):
                raise
            # Even the dead letter is refused (a NUL in a string, say): the row
            # cannot be kept in PostgreSQL. Counted and logged, never retried forever.
            telemetry.DROPPED.inc()
            log.error("row refused and unstorable as a dead letter, dropped",
                      extra={"site": record[_SITE], "error": error,
                             "dead_letter_error": _describe(letter_exc)})
            return
        telemetry.DEAD_LETTERS.inc()
        log.error("row refused, kept in binome.dead_letters",
                  extra={"site": record[_SITE], "error": error})

    async def _ensure_partitions(self, conn: asyncpg.Connection, days: set[dt.date]) -> None:
        for day in days - self._known_days:
            try:
                await conn.execute("SELECT binome.ensure_beacon_partition($1)", day)
            except asyncpg.DuplicateTableError:
                # Two workers met a new day at once. The function's advisory lock
                # does not refresh the waiter's catalog snapshot (only relation
                # locks process invalidations), so it may not see the partition the
                # other just created, and tries again: the partition exists.
                pass
            self._known_days.add(day)

    async def _flush_counts(self, conn: asyncpg.Connection | None = None) -> None:
        self._counts_flushed_at = time.monotonic()
        taken = self.counts.take()
        if not taken:
            return
        columns: list[list[Any]] = [[], [], [], [], [], []]
        for site, minute, counts in taken:
            columns[0].append(site)
            columns[1].append(dt.datetime.fromtimestamp(minute * 60, dt.UTC))
            for i, value in enumerate(counts):
                columns[2 + i].append(value)
        try:
            if conn is None:
                if self._pool is None:
                    raise ConnectionError("writer not started")
                async with self._pool.acquire(timeout=5) as own:
                    await own.execute(_COUNT_UPSERT, *columns)
            else:
                await conn.execute(_COUNT_UPSERT, *columns)
        except Exception:  # counters wait for the next write, whatever the failure
            self.counts.put_back(taken)


async def _in_slices(batch: Sequence[Record]) -> AsyncIterator[Record]:
    """The batch's rows, with a turn of the event loop every COPY_SLICE_ROWS: asyncpg
    encodes the rows of a COPY in one go, about 5 µs each, and a catch-up write of
    8,000 rows would hold every beacon waiting for an answer for 40 ms."""
    for start in range(0, len(batch), COPY_SLICE_ROWS):
        if start:
            await asyncio.sleep(0)
        for record in batch[start:start + COPY_SLICE_ROWS]:
            yield record


def _day_bounds(batch: Sequence[Record]) -> tuple[dt.date, dt.date]:
    """The days a resend of the batch's beacons may be stored on."""
    days = [record[_DAY] for record in batch]
    return min(days) - _RESEND_DAYS, max(days) + _RESEND_DAYS


def _coalesce(batches: Iterator[list[Record]], rows: int) -> Iterator[list[Record]]:
    """Spooled batches joined into writes of about `rows` rows: an outage spools
    many small batches, and one transaction per batch would slow the replay."""
    pending: list[Record] = []
    for batch in batches:
        pending.extend(batch)
        if len(pending) >= rows:
            yield pending
            pending = []
    if pending:
        yield pending


async def _prepare_connection(conn: asyncpg.Connection) -> None:
    await conn.execute(_STAGING)


def _record_json(record: Record) -> str:
    text = orjson.dumps(dict(zip(COLUMNS, record, strict=True)), default=str).decode()
    # jsonb refuses the \u0000 escape; the dead letter keeps U+FFFD in its place.
    return text.replace("\\u0000", "\\ufffd")
