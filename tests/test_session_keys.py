"""The keys of the session pseudonyms (collector/session_keys.py,
sql/functions/60_session_keys.sql): one random key per UTC day, shared by the
collectors of one database, out of the writer's reach, deleted once the day's
beacons can no longer arrive (issue 20)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import time
from typing import Any

import asyncpg
import httpx
import pytest

from collector import PROJECT_ROOT, db
from collector.enrich import session_pseudonym
from collector.maintenance import maintain
from collector.session_keys import SessionKeys
from tests.conftest import MOBILE_UA, create_login, free_port, make_beacon, stored


def post(base: str, beacon: dict[str, Any]) -> httpx.Response:
    return httpx.post(base + "/beacon", content=json.dumps(beacon),
                      headers={"Content-Type": "text/plain", "User-Agent": MOBILE_UA})


def unkeyed_pseudonym(site: str, day: dt.date, sid: str) -> str:
    """The former formula: anyone with the sid could recompute it."""
    return base64.urlsafe_b64encode(hashlib.blake2b(
        f"{site}\x00{day.isoformat()}\x00{sid}".encode(), digest_size=12,
        person=b"binome.sid.v1").digest()).decode()


async def utc_today(conn: asyncpg.Connection) -> dt.date:
    today: dt.date = await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    return today


async def test_two_collectors_of_one_database_store_one_pseudonym(
    start_collector: Any, conn: asyncpg.Connection
) -> None:
    first, second = start_collector(), start_collector()
    sid = "s" + secrets.token_hex(8)
    beacons = [make_beacon(sid=sid), make_beacon(sid=sid)]
    assert post(first.url, beacons[0]).status_code == 204
    assert post(second.url, beacons[1]).status_code == 204
    [one] = await stored(conn, beacons[0]["pv"])
    [other] = await stored(conn, beacons[1]["pv"])
    assert one["day"] == other["day"]
    assert one["sid"] == other["sid"]  # one session, whichever collector took the beacon
    # Keyed: neither the tab's id nor anything computed from it alone.
    key = await conn.fetchval("SELECT key FROM binome.session_keys WHERE day = $1", one["day"])
    assert one["sid"] == session_pseudonym(bytes(key), "demo", one["day"], sid)
    assert one["sid"] not in (sid, unkeyed_pseudonym("demo", one["day"], sid))


async def test_session_keys_are_shared_through_the_database(
    database_url: str, conn: asyncpg.Connection
) -> None:
    """Two processes' key sets (two pools) agree on every day they share; the
    first proposal wins."""
    today = await utc_today(conn)
    pools = [await asyncpg.create_pool(database_url, min_size=0) for _ in range(2)]
    try:
        keys = [SessionKeys(pool) for pool in pools]
        for each in keys:
            await each.share(today)
        for day in (today - dt.timedelta(days=1), today, today + dt.timedelta(days=1)):
            assert keys[0].key(day) == keys[1].key(day)
            assert len(keys[0].key(day)) == 32
        assert keys[0].all_shared and keys[1].all_shared
    finally:
        for pool in pools:
            await pool.close()


class Reconnecting:
    """A collector's pool across an outage: the same object, PostgreSQL down then back."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.pool.fetchval(query, *args)


async def test_a_collector_pseudonymises_while_postgresql_is_unreachable(
    database_url: str, conn: asyncpg.Connection
) -> None:
    """PostgreSQL down when a day's key is first needed: a local key at once,
    beacons never wait; the stored key is adopted once PostgreSQL answers."""
    today = await utc_today(conn)
    shared = SessionKeys(conn)
    await shared.share(today)  # another collector made today's key
    down = await asyncpg.create_pool(f"postgresql://nobody@127.0.0.1:{free_port()}/x",
                                     min_size=0)
    database = Reconnecting(down)
    keys = SessionKeys(database)
    started = time.monotonic()
    await keys.start()  # logs a warning, does not raise
    try:
        assert time.monotonic() - started < 10
        local = keys.key(today)
        assert not keys.all_shared
        database.pool = await asyncpg.create_pool(database_url, min_size=0)  # back
        await keys.share(today)
        assert keys.all_shared
        assert keys.key(today) == shared.key(today) != local
    finally:
        await keys.stop()
        await down.close()
        await database.pool.close()


async def test_binome_maintain_deletes_the_keys_of_past_days(fresh_database: str) -> None:
    conn = await db.connect(fresh_database)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        today = await utc_today(conn)
        keys = SessionKeys(conn)
        await keys.share(today)  # yesterday's, today's and tomorrow's
        for past in (2, 3, 40):
            await conn.execute("INSERT INTO binome.session_keys (day, key) VALUES ($1, $2)",
                               today - dt.timedelta(days=past), secrets.token_bytes(32))
        report = await maintain(conn, retention_months=25, rollup_lag_days=1, today=today)
        assert report is not None and report.session_keys_deleted == 3
        assert "3 past session keys deleted" in report.summary()
        days = {r["day"] for r in await conn.fetch("SELECT day FROM binome.session_keys")}
        # yesterday's stays: a page view of yesterday may still send beacons today
        assert days == {today + dt.timedelta(days=d) for d in (-1, 0, 1)}
        # and no key can be made again for a day that is over
        assert await conn.fetchval("SELECT binome.session_key($1, $2)",
                                   today - dt.timedelta(days=2), secrets.token_bytes(32)) is None
    finally:
        await conn.close()


async def test_the_collector_forgets_past_keys() -> None:
    today = dt.date(2026, 3, 10)
    keys = SessionKeys()
    before = {day: keys.key(today - dt.timedelta(days=day)) for day in (0, 1, 2)}
    await keys.share(today)
    assert keys.key(today) == before[0] and keys.key(today - dt.timedelta(days=1)) == before[1]
    assert keys.key(today - dt.timedelta(days=2)) != before[2]  # forgotten: a new one


@pytest.mark.parametrize("role", ["binome_writer", "binome_analyst"])
async def test_no_role_but_the_owner_reads_the_keys(
    database_url: str, conn: asyncpg.Connection, role: str
) -> None:
    login = f"binome_test_keys_{role.split('_')[1]}_{secrets.token_hex(3)}"
    url = await create_login(conn, database_url, login, in_role=role)
    try:
        reader = await asyncpg.connect(url)
        try:
            for forbidden in ("SELECT * FROM binome.session_keys",
                              "DELETE FROM binome.session_keys",
                              "INSERT INTO binome.session_keys (day, key) VALUES "
                              "(current_date, decode(repeat('00', 32), 'hex'))"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await reader.execute(forbidden)
            if role == "binome_writer":  # the collector: today's key, through the function
                today = await utc_today(reader)
                assert await reader.fetchval("SELECT binome.session_key($1, $2)", today,
                                             secrets.token_bytes(32)) is not None
            else:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await reader.fetchval("SELECT binome.session_key(current_date, $1)",
                                          secrets.token_bytes(32))
        finally:
            await reader.close()
    finally:
        await conn.execute(f"DROP OWNED BY {login}; DROP ROLE {login}")
