"""The writer: accepted beacons wait in a bounded in-memory queue and are written
to PostgreSQL in batches with COPY.

A batch is flushed when it holds `batch_max_rows` beacons or when its oldest
beacon has waited `batch_max_ms`. Each batch is COPY'd into a per-connection
temporary table, then moved into binome.beacons by one INSERT ... SELECT that
honours the idempotency key (site, pv, seq): the primary key catches a resend in
the same daily partition, and a NOT EXISTS over the two days either side catches
the rare resend whose partition day differs (see enrich.page_view_day).

When a batch fails because of its content, it is written again row by row so one
bad row never loses the rest: the rows PostgreSQL refuses go to
binome.dead_letters with their error. When it fails because PostgreSQL cannot be
reached, the batch is kept and retried with backoff; meanwhile the queue fills
and POST /beacon answers 503 once it is full, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from collector import telemetry
from collector.enrich import COLUMNS

log = logging.getLogger(__name__)

Record = tuple[Any, ...]

_DAY = COLUMNS.index("day")
_SITE = COLUMNS.index("site")

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
    WHERE NOT EXISTS (
        SELECT 1 FROM binome.beacons b
        WHERE b.site = i.site AND b.pv = i.pv AND b.seq = i.seq
          AND b.day BETWEEN i.day - 2 AND i.day + 2 AND b.day <> i.day)
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

# Errors that say "PostgreSQL is not there right now", as opposed to "this data is wrong".
_UNREACHABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.QueryCanceledError,
)


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


class BeaconWriter:
    def __init__(self, database_url: str, *, batch_max_rows: int, batch_max_ms: int,
                 queue_max: int) -> None:
        self._database_url = database_url
        self._batch_max_rows = batch_max_rows
        self._batch_max_s = batch_max_ms / 1000
        self._queue_max = queue_max
        self._pending: collections.deque[Record] = collections.deque()
        self._oldest_at = 0.0
        self._has_data = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        self._known_days: set[dt.date] = set()
        self.counts = IngestCounts()
        self.last_write_ok: float | None = None
        self.last_error: str | None = None

    # -- the route's side -------------------------------------------------

    def offer(self, record: Record) -> bool:
        """Queue one beacon row; False when the queue is full (the caller answers 503)."""
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

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._database_url, min_size=1, max_size=2, init=_prepare_connection,
            server_settings={"application_name": "binome-writer", "statement_timeout": "60s"},
        )
        self._task = asyncio.create_task(self._run(), name="binome-writer")

    async def stop(self) -> None:
        """Stop taking beacons, write what is queued, then close."""
        self._closing = True
        self._has_data.set()
        self._batch_full.set()
        if self._task is not None:
            await self._task
        if self._pool is not None:
            await self._pool.close()

    async def ping(self, timeout: float = 2.0) -> None:
        assert self._pool is not None
        async with self._pool.acquire(timeout=timeout) as conn:
            await conn.fetchval("SELECT 1", timeout=timeout)

    # -- the flusher --------------------------------------------------------

    async def _run(self) -> None:
        loop_time = time.monotonic
        while True:
            if not self._pending:
                if self._closing:
                    await self._flush_counts()
                    return
                self._has_data.clear()
                try:
                    await asyncio.wait_for(self._has_data.wait(), 1.0)
                except TimeoutError:
                    await self._flush_counts()
                continue
            deadline = self._oldest_at + self._batch_max_s
            while len(self._pending) < self._batch_max_rows and not self._closing:
                remaining = deadline - loop_time()
                if remaining <= 0:
                    break
                self._batch_full.clear()
                try:
                    await asyncio.wait_for(self._batch_full.wait(), remaining)
                except TimeoutError:
                    break
            take = min(len(self._pending), self._batch_max_rows)
            batch = [self._pending.popleft() for _ in range(take)]
            if self._pending:
                self._oldest_at = loop_time()
            await self._write_until_done(batch)

    async def _write_until_done(self, batch: list[Record]) -> None:
        delay = 0.1
        while True:
            try:
                await self.write_batch(batch)
                return
            except _UNREACHABLE as exc:
                self._note_failure(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _note_failure(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if message != self.last_error:
            log.warning("write failed, will retry", extra={"error": message})
        self.last_error = message
        telemetry.WRITE_ERRORS.inc()

    async def write_batch(self, batch: Sequence[Record]) -> int:
        """Write one batch; returns the rows inserted (resends are not counted)."""
        assert self._pool is not None
        started = time.perf_counter()
        async with self._pool.acquire() as conn:
            await self._ensure_partitions(conn, {r[_DAY] for r in batch})
            try:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "incoming_beacons", records=batch, columns=COLUMNS
                    )
                    rows_by_site = dict(await conn.fetch(_MOVE))
                written = sum(rows_by_site.values())
            except _UNREACHABLE:
                raise
            except asyncpg.PostgresError as exc:
                log.warning("batch refused, writing row by row", extra={"error": str(exc)})
                written, rows_by_site = await self._write_rows_one_by_one(conn, batch)
            await self._flush_counts(conn, rows_by_site, written)
        telemetry.WRITE_SECONDS.observe(time.perf_counter() - started)
        telemetry.BATCHES.inc()
        telemetry.ROWS_WRITTEN.inc(written)
        self.last_write_ok = time.time()
        telemetry.LAST_WRITE.set(self.last_write_ok)
        if self.last_error is not None:
            log.info("writes succeed again")
            self.last_error = None
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
                    for site, inserted in await conn.fetch(_MOVE):
                        written += inserted
                        rows_by_site[site] += inserted
            except _UNREACHABLE:
                raise
            except asyncpg.PostgresError as exc:
                await conn.execute(
                    "INSERT INTO binome.dead_letters (site, error, record) VALUES ($1, $2, $3)",
                    record[_SITE], f"{type(exc).__name__}: {exc}", _record_json(record),
                )
                telemetry.DEAD_LETTERS.inc()
                log.error("row refused, kept in binome.dead_letters",
                          extra={"site": record[_SITE], "error": str(exc)})
        return written, rows_by_site

    async def _ensure_partitions(self, conn: asyncpg.Connection, days: set[dt.date]) -> None:
        for day in days - self._known_days:
            await conn.execute("SELECT binome.ensure_beacon_partition($1)", day)
            self._known_days.add(day)

    async def _flush_counts(self, conn: asyncpg.Connection | None = None,
                            rows_by_site: dict[str, int] | None = None, written: int = 0) -> None:
        for site, rows in (rows_by_site or {}).items():
            self.counts.add(site, rows_written=rows)
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
                async with self._pool.acquire() as own:
                    await own.execute(_COUNT_UPSERT, *columns)
            else:
                await conn.execute(_COUNT_UPSERT, *columns)
        except (*_UNREACHABLE, asyncpg.PostgresError, ConnectionError):
            self.counts.put_back(taken)


async def _prepare_connection(conn: asyncpg.Connection) -> None:
    await conn.execute(_STAGING)


def _record_json(record: Record) -> str:
    return orjson.dumps(dict(zip(COLUMNS, record, strict=True)), default=str).decode()
