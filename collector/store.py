"""What one write does to PostgreSQL: a batch of rows into binome.beacons.

The batch is COPY'd into a per-connection temporary table, then moved into
binome.beacons by one INSERT ... SELECT that honours the idempotency key (site,
pv, seq): the primary key catches a resend in the same daily partition, and a
NOT EXISTS over the days either side catches the rare resend whose partition day
differs (row.page_view_day). A batch written twice is therefore stored once.

A batch PostgreSQL refuses for its data (is_data_error) is written again row by
row, and the rows it refuses go to binome.dead_letters with their error; any
other failure is raised, the batch untouched, for the writer to spool or retry.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import orjson
from asyncpg.exceptions import _base as asyncpg_base

from collector import telemetry
from collector.row import COLUMNS, T0_MAX_AGE_DAYS, Record

log = logging.getLogger(__name__)

_DAY = COLUMNS.index("day")
_SITE = COLUMNS.index("site")
# A resend's t0 may put it at most this far from the day it was first stored on.
_RESEND_DAYS = dt.timedelta(days=T0_MAX_AGE_DAYS)
# A COPY lets the event loop answer beacons between slices of this many rows.
COPY_SLICE_ROWS = 500

# binome.beacon_columns has binome.beacons' columns and no row: the binome_writer
# role may read it, not the stored beacons (sql/views/00_beacon_columns.sql).
STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS incoming_beacons"
    " (LIKE binome.beacon_columns) ON COMMIT DELETE ROWS"
)
MOVE = """
WITH inserted AS (
    INSERT INTO binome.beacons
    SELECT DISTINCT ON (i.site, i.pv, i.seq) i.*
    FROM incoming_beacons i
    -- A resend whose t0 put it on another day (±2) is already stored there. The
    -- days are listed, not a range around i.day, so each beacon is one index
    -- probe per neighbouring day, and $1..$2 (the batch's days ±2) keep the other
    -- partitions out of the plan (docs/performance.md).
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
_REJECTION_UPSERT = """
INSERT INTO binome.ingest_rejections AS r (minute, reason, site, origin, refused)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::bigint[])
ON CONFLICT (minute, reason, site, origin) DO UPDATE SET refused = r.refused + excluded.refused
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


def describe(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"


async def prepare_connection(conn: asyncpg.Connection) -> None:
    """The pool's `init`: each connection gets its staging table once."""
    await conn.execute(STAGING)


async def write_batch(conn: asyncpg.Connection, batch: Sequence[Record],
                      known_days: set[dt.date]) -> dict[str, int]:
    """Write one batch; returns the rows inserted by site (resends not counted).
    `known_days` are the days whose partition exists, updated here."""
    await _ensure_partitions(conn, {r[_DAY] for r in batch}, known_days)
    moved = False
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "incoming_beacons", records=_in_slices(batch), columns=COLUMNS
            )
            rows_by_site = dict(await conn.fetch(MOVE, *_day_bounds(batch)))
            moved = True
        return rows_by_site
    except Exception as exc:
        if not is_data_error(exc):
            if moved:
                # The COMMIT itself failed: PostgreSQL may have committed
                # before the connection broke. The batch is resent, so
                # nothing is lost, but if it had landed the resend inserts
                # nothing and its rows go uncounted in rows_written. (A
                # data error at COMMIT is PostgreSQL's answer: rolled back.)
                log.warning("batch commit outcome unknown: the batch is resent",
                            extra={"beacons": len(batch), "error": describe(exc)})
            raise
        log.warning("batch refused, writing row by row", extra={"error": str(exc)})
        return await _write_rows_one_by_one(conn, batch)


async def _write_rows_one_by_one(conn: asyncpg.Connection,
                                 batch: Sequence[Record]) -> dict[str, int]:
    rows_by_site: dict[str, int] = collections.Counter()
    for record in batch:
        try:
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "incoming_beacons", records=[record], columns=COLUMNS
                )
                for site, inserted in await conn.fetch(MOVE, *_day_bounds([record])):
                    rows_by_site[site] += inserted
        except Exception as exc:
            if not is_data_error(exc):
                raise
            await _dead_letter(conn, record, exc)
    return rows_by_site


async def _dead_letter(conn: asyncpg.Connection, record: Record, exc: BaseException) -> None:
    error = describe(exc)
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
                         "dead_letter_error": describe(letter_exc)})
        return
    telemetry.DEAD_LETTERS.inc()
    log.error("row refused, kept in binome.dead_letters",
              extra={"site": record[_SITE], "error": error})


async def _ensure_partitions(conn: asyncpg.Connection, days: set[dt.date],
                             known_days: set[dt.date]) -> None:
    for day in days - known_days:
        try:
            await conn.execute("SELECT binome.ensure_beacon_partition($1)", day)
        except asyncpg.DuplicateTableError:
            # Two workers met a new day at once. The function's advisory lock
            # does not refresh the waiter's catalog snapshot (only relation
            # locks process invalidations), so it may not see the partition the
            # other just created, and tries again: the partition exists.
            pass
        known_days.add(day)


async def write_counts(conn: asyncpg.Connection,
                       taken: list[tuple[str, int, list[int]]]) -> None:
    """Add per-minute counters (telemetry.IngestCounts.take()) to binome.ingest_counts."""
    columns: list[list[Any]] = [[], [], [], [], [], []]
    for site, minute, counts in taken:
        columns[0].append(site)
        columns[1].append(dt.datetime.fromtimestamp(minute * 60, dt.UTC))
        for i, value in enumerate(counts):
            columns[2 + i].append(value)
    await conn.execute(_COUNT_UPSERT, *columns)


async def write_rejections(conn: asyncpg.Connection,
                           taken: list[tuple[int, str, str, str, int]]) -> None:
    """Add refused-beacon counters (rejections.Rejections.take()) to
    binome.ingest_rejections."""
    columns: list[list[Any]] = [[], [], [], [], []]
    for minute, reason, site, origin, refused in taken:
        columns[0].append(dt.datetime.fromtimestamp(minute * 60, dt.UTC))
        columns[1].append(reason)
        columns[2].append(site)
        columns[3].append(origin)
        columns[4].append(refused)
    await conn.execute(_REJECTION_UPSERT, *columns)


async def _in_slices(batch: Sequence[Record]) -> AsyncIterator[Record]:
    """The batch's rows, with a turn of the event loop every COPY_SLICE_ROWS: asyncpg
    encodes the rows of a COPY in one go, and a large catch-up write would
    otherwise hold every beacon waiting for an answer (docs/performance.md)."""
    for start in range(0, len(batch), COPY_SLICE_ROWS):
        if start:
            await asyncio.sleep(0)
        for record in batch[start:start + COPY_SLICE_ROWS]:
            yield record


def _day_bounds(batch: Sequence[Record]) -> tuple[dt.date, dt.date]:
    """The days a resend of the batch's beacons may be stored on."""
    days = [record[_DAY] for record in batch]
    return min(days) - _RESEND_DAYS, max(days) + _RESEND_DAYS


def _record_json(record: Record) -> str:
    text = orjson.dumps(dict(zip(COLUMNS, record, strict=True)), default=str).decode()
    # jsonb refuses the \u0000 escape; the dead letter keeps U+FFFD in its place.
    return text.replace("\\u0000", "\\ufffd")
