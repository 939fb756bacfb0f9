"""The writer (collector/writer.py) against a real PostgreSQL: batches, the
idempotency key across partitions, and a poisoned row that must not sink its batch."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from collector import PROJECT_ROOT, db
from collector.beacon_decoder import parse as parse_beacon
from collector.enrich import to_record
from collector.spool import Spool
from collector.store import COPY_SLICE_ROWS, _in_slices
from collector.writer import BeaconWriter
from tests.conftest import MOBILE_UA, make_beacon, wait_for

UTC = dt.UTC
MIDNIGHT = dt.datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture
async def migrated(fresh_database: str) -> AsyncIterator[str]:
    conn = await asyncpg.connect(fresh_database)
    await db.migrate(conn, PROJECT_ROOT / "sql")
    await conn.close()
    yield fresh_database


def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool", max_bytes=2**20)


@pytest.fixture
async def writer(migrated: str, tmp_path: Path) -> AsyncIterator[BeaconWriter]:
    w = BeaconWriter(migrated, batch_max_rows=100, batch_max_ms=10, queue_max=1000,
                     spool=spool(tmp_path))
    await w.start()
    yield w
    await w.stop()


def record(received_at: dt.datetime, **fields: object) -> tuple[object, ...]:
    beacon = parse_beacon(json.dumps(make_beacon(**fields)).encode())
    return to_record(beacon, received_at, MOBILE_UA, None)


async def test_resend_across_midnight_with_t0_is_stored_once(
    writer: BeaconWriter, migrated: str
) -> None:
    t0 = (MIDNIGHT - dt.timedelta(seconds=2)).timestamp() * 1000
    before = record(MIDNIGHT - dt.timedelta(seconds=1), pv="acrossmidnight1", t0=t0)
    resend = record(MIDNIGHT + dt.timedelta(seconds=30), pv="acrossmidnight1", t0=t0)
    later_seq = record(MIDNIGHT + dt.timedelta(seconds=40), pv="acrossmidnight1", t0=t0, seq=1)
    assert await writer.write_batch([before]) == 1
    assert await writer.write_batch([resend, later_seq]) == 1
    conn = await asyncpg.connect(migrated)
    rows = await conn.fetch(
        "SELECT b.seq, b.day, c.relname AS part FROM binome.beacons b"
        " JOIN pg_class c ON c.oid = b.tableoid WHERE b.pv = 'acrossmidnight1' ORDER BY b.seq")
    await conn.close()
    assert [(r["seq"], r["day"]) for r in rows] == [(0, dt.date(2026, 11, 25)),
                                                     (1, dt.date(2026, 11, 25))]
    assert rows[0]["part"] == "beacons_20261125"


async def test_resend_across_midnight_without_t0_is_stored_once(
    writer: BeaconWriter, migrated: str
) -> None:
    before = record(MIDNIGHT - dt.timedelta(seconds=1), pv="noclock0000001", t0=None)
    resend = record(MIDNIGHT + dt.timedelta(seconds=1), pv="noclock0000001", t0=None)
    assert before[1] != resend[1]  # they fall in different daily partitions
    assert await writer.write_batch([before]) == 1
    assert await writer.write_batch([resend]) == 0
    conn = await asyncpg.connect(migrated)
    count = await conn.fetchval("SELECT count(*) FROM binome.beacons WHERE pv = 'noclock0000001'")
    await conn.close()
    assert count == 1


async def test_duplicates_inside_one_batch(writer: BeaconWriter) -> None:
    now = dt.datetime.now(UTC)
    one = record(now, pv="dupinbatch0001")
    assert await writer.write_batch([one, one, one]) == 1


async def test_poisoned_row_does_not_sink_its_batch(writer: BeaconWriter, migrated: str) -> None:
    conn = await asyncpg.connect(migrated)
    # A rule PostgreSQL enforces and the model does not know: a real refusal, not a mock.
    await conn.execute("ALTER TABLE binome.beacons ADD CONSTRAINT no_poison"
                       " CHECK (path <> '/poison')")
    now = dt.datetime.now(UTC)
    good1 = record(now, pv="goodrow0000001")
    bad = record(now, pv="poisonrow00001", url="https://shop.example/poison")
    good2 = record(now, pv="goodrow0000002")
    assert await writer.write_batch([good1, bad, good2]) == 2
    stored = {r["pv"] for r in await conn.fetch("SELECT pv FROM binome.beacons")}
    letters = await conn.fetch("SELECT site, error, record FROM binome.dead_letters")
    await conn.close()
    assert stored == {"goodrow0000001", "goodrow0000002"}
    assert len(letters) == 1 and "no_poison" in letters[0]["error"]
    assert json.loads(letters[0]["record"])["pv"] == "poisonrow00001"


async def test_queue_is_bounded(migrated: str, tmp_path: Path) -> None:
    w = BeaconWriter(migrated, batch_max_rows=1000, batch_max_ms=60_000, queue_max=3,
                     spool=spool(tmp_path))
    now = dt.datetime.now(UTC)
    offered = [w.offer(record(now)) for _ in range(5)]
    assert offered == [True, True, True, False, False]
    assert w.full and w.depth == 3


async def test_stop_flushes_the_queue(migrated: str, tmp_path: Path) -> None:
    w = BeaconWriter(migrated, batch_max_rows=1000, batch_max_ms=60_000, queue_max=100,
                     spool=spool(tmp_path))
    await w.start()
    now = dt.datetime.now(UTC)
    for i in range(10):
        assert w.offer(record(now, pv=f"flushonstop{i:04d}"))
    await w.stop()
    assert w.closing and not w.offer(record(now))  # ingest answers 503 shutting_down
    assert w.unready_reason() == "shutting down"
    conn = await asyncpg.connect(migrated)
    count = await conn.fetchval("SELECT count(*) FROM binome.beacons WHERE pv LIKE 'flushonstop%'")
    counted = await conn.fetchval("SELECT sum(rows_written) FROM binome.ingest_counts")
    await conn.close()
    assert count == 10 and counted == 10


async def test_unreachable_database_spools_and_a_later_start_replays(
    migrated: str, tmp_path: Path
) -> None:
    """No cluster to stop here: a port nothing listens on is PostgreSQL being down."""
    from tests.conftest import free_port

    down = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    w = BeaconWriter(down, batch_max_rows=4, batch_max_ms=10, queue_max=100,
                     spool=spool(tmp_path))
    await w.start()
    now = dt.datetime.now(UTC)
    records = [record(now, pv=f"spooledwhiledown{i:03d}") for i in range(10)]
    for r in records:
        assert w.offer(r)
    for _ in range(200):
        if w.depth == 0:
            break
        await asyncio.sleep(0.02)
    assert w.depth == 0 and w.spooling  # the queue drained into the spool
    reason = w.unready_reason()
    assert reason is not None and "database writes failing" in reason
    await w.stop()
    assert w.spool_usage()[1] >= 1

    again = BeaconWriter(migrated, batch_max_rows=100, batch_max_ms=10, queue_max=100,
                         spool=spool(tmp_path))
    await again.start()
    assert again.spooling  # the spool goes first
    conn = await asyncpg.connect(migrated)
    try:
        stored = await wait_for(conn, "SELECT count(*) FROM binome.beacons"
                                " WHERE pv LIKE 'spooledwhiledown%'", expect=10)
        assert stored == 10
        for _ in range(200):
            if not again.spooling:
                break
            await asyncio.sleep(0.02)
        assert not again.spooling and again.spool_usage() == (0, 0)
    finally:
        await again.stop()
        await conn.close()


async def test_a_replayed_batch_is_stored_once(writer: BeaconWriter, migrated: str,
                                               tmp_path: Path) -> None:
    """A batch written, then spooled anyway (the answer to COMMIT was lost), then replayed."""
    now = dt.datetime.now(UTC)
    batch = [record(now, pv=f"writtentwice{i:03d}") for i in range(5)]
    assert await writer.write_batch(batch) == 5
    assert await writer.write_batch(batch) == 0


async def test_two_writers_meeting_a_new_day_both_write(migrated: str, tmp_path: Path) -> None:
    """Workers that create the same daily partition at once: the loser of the
    race sees DuplicateTableError (its advisory-lock wait leaves its catalog
    snapshot stale), which must not fail its batch."""
    writers = [BeaconWriter(migrated, batch_max_rows=100, batch_max_ms=10, queue_max=100,
                            spool=Spool(tmp_path / f"spool{i}", max_bytes=2**20))
               for i in range(2)]
    for w in writers:
        await w.start()
    try:
        for n in range(5):
            received = dt.datetime(2031, 3, 1 + n, 12, tzinfo=UTC)
            written = await asyncio.gather(*(
                w.write_batch([record(received, pv=f"newday{n}w{i}xxxx", t0=None)])
                for i, w in enumerate(writers)))
            assert written == [1, 1]
    finally:
        for w in writers:
            await w.stop()


async def test_a_large_write_lets_the_event_loop_answer_between_slices(
        writer: BeaconWriter, migrated: str) -> None:
    """A catch-up write of several COPY slices stores every row, and beacons
    waiting for an answer get a turn of the event loop between slices."""
    received_at = dt.datetime.now(UTC)
    batch = [record(received_at, pv=f"largewrite{i}") for i in range(COPY_SLICE_ROWS * 2 + 200)]
    encoded: list[object] = []
    turns: list[int] = []

    async def answering_beacons() -> None:
        while True:
            turns.append(len(encoded))
            await asyncio.sleep(0)

    async def rows() -> AsyncIterator[object]:
        async for row in _in_slices(batch):
            encoded.append(row)
            yield row

    other = asyncio.create_task(answering_beacons())
    await asyncio.sleep(0)
    seen = [row async for row in rows()]
    other.cancel()
    assert seen == batch
    assert {COPY_SLICE_ROWS, COPY_SLICE_ROWS * 2} <= set(turns)

    assert await writer.write_batch(batch) == len(batch)
    conn = await asyncpg.connect(migrated)
    try:
        assert await conn.fetchval("SELECT count(*) FROM binome.beacons WHERE pv LIKE 'largewrite%'"
                                   ) == len(batch)
    finally:
        await conn.close()
