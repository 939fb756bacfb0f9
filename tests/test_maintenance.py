"""`binome maintain` from the command line, and the periodic run of `binome serve`."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import asyncpg

from collector import PROJECT_ROOT, db
from collector.maintenance import maintain
from tests.test_cli import binome


async def migrated(url: str) -> None:
    conn = await db.connect(url)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
    finally:
        await conn.close()


async def test_binome_maintain(fresh_database: str) -> None:
    done = await asyncio.to_thread(binome, "maintain",
                                   env={"BINOME_DATABASE_URL": fresh_database})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("maintenance: partitions ready through")
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await conn.fetchval("SELECT to_regclass($1)",
                                   f"binome.beacons_{tomorrow:%Y%m%d}") is not None
    finally:
        await conn.close()


async def test_serve_maintains_periodically(fresh_database: str, start_collector: Any) -> None:
    await migrated(fresh_database)
    conn = await asyncpg.connect(fresh_database)
    try:
        old = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=5)
        await conn.execute("SELECT binome.ensure_beacon_partition($1)", old)
        await conn.execute(
            "INSERT INTO binome.beacons (site, day, pv, seq, received_at, consent, path, lcp)"
            " VALUES ('demo', $1, 'oldpage1', 0, $2, 'performance', '/', 1234)",
            old, dt.datetime.combine(old, dt.time(12), dt.UTC))
        # Two workers' worth of loops: one runs, the other finds the lock taken.
        for _ in range(2):
            start_collector(database_url=fresh_database, maintenance_minutes=0.01)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if await conn.fetchval("SELECT count(*) FROM binome.scorecard_days") == 1:
                break
            await asyncio.sleep(0.2)
        assert await conn.fetchval(
            "SELECT lcp_p75 FROM binome.scorecard_days WHERE site = 'demo' AND day = $1",
            old) == 1234
        assert await conn.fetchval("SELECT count(*) FROM binome.rollup_dirty") == 0
    finally:
        await conn.close()


async def waits_for(conn: asyncpg.Connection, other: asyncpg.Connection, locktype: str) -> None:
    """Until `other`'s statement waits for a lock of this type."""
    pid = other.get_server_pid()
    deadline = time.monotonic() + 30
    while not await conn.fetchval("SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted"
                                  " AND locktype = $2", pid, locktype):
        assert time.monotonic() < deadline, f"{pid} never waited for a {locktype} lock"
        await asyncio.sleep(0.05)


async def test_migrate_and_maintain_exclude_each_other(fresh_database: str) -> None:
    """A migrate re-creates the functions and triggers a maintenance run uses (it
    deadlocked once with one in sql/functions/45_rollup_sums.sql): each waits for
    the other to end (collector/db.py, schema_steady)."""
    await migrated(fresh_database)
    blocker, runner, migrator = [await db.connect(fresh_database) for _ in range(3)]
    try:
        # A maintenance run under way, held up by a lock on a table it reads.
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE binome.fold_queue IN ACCESS EXCLUSIVE MODE")
            run = asyncio.ensure_future(maintain(runner, retention_months=1000,
                                                 rollup_lag_days=1))
            await waits_for(blocker, runner, "relation")
            migration = asyncio.ensure_future(db.migrate(migrator, PROJECT_ROOT / "sql"))
            await waits_for(blocker, migrator, "advisory")
            assert not migration.done()
        assert await run is not None
        assert await migration == []

        # A migrate under way: a maintenance run waits for it.
        await blocker.execute("SELECT pg_advisory_lock($1)", db.MIGRATION_LOCK)
        run = asyncio.ensure_future(maintain(runner, retention_months=1000, rollup_lag_days=1))
        await waits_for(blocker, runner, "advisory")
        assert not run.done()
        await blocker.execute("SELECT pg_advisory_unlock($1)", db.MIGRATION_LOCK)
        assert await run is not None
    finally:
        for conn in (blocker, runner, migrator):
            await conn.close()
