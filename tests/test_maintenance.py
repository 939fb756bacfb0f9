"""`binome maintain` from the command line, and the periodic run of `binome serve`."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import asyncpg

from collector import PROJECT_ROOT, db
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
