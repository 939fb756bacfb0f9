"""binome_writer and binome_analyst (sql/migrations/0001_baseline.sql; grants on
functions in sql/functions/99_grants.sql), tried for real: a collector running as
the writer stores beacons and maintains; each role is refused what it must not do."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from collector.maintenance import maintain
from tests.conftest import MOBILE_UA, create_login, make_beacon, wait_for

# binome_analyst reads the grouped views; the row-level ones are binome_analyst_rows'
# (sql/views/99_grants.sql, docs/privacy.md).
RUM_VIEWS = ("scorecard_daily", "scorecard_histograms", "campaign_histograms",
             "perf_vs_conversion", "release_comparison", "ingest_health", "site_daily", "sites",
             "objectives", "objective_weeks", "objective_results")
ROW_LEVEL_VIEWS = ("page_views_enriched", "sessions")


@contextlib.asynccontextmanager
async def login_in(conn: asyncpg.Connection, database_url: str, role: str) -> AsyncIterator[str]:
    """A login role that is a member of `role`, as the README says to set up."""
    name = f"binome_test_{role.removeprefix('binome_')}_" + secrets.token_hex(3)
    try:
        yield await create_login(conn, database_url, name, in_role=role)
    finally:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
        await conn.execute(f"DROP OWNED BY {name}")
        await conn.execute(f"DROP ROLE {name}")


@pytest.fixture
async def writer_login(conn: asyncpg.Connection, database_url: str) -> AsyncIterator[str]:
    async with login_in(conn, database_url, "binome_writer") as url:
        yield url


async def test_a_collector_runs_as_binome_writer(
    writer_login: str, start_collector: Any, conn: asyncpg.Connection
) -> None:
    collector = start_collector(database_url=writer_login, batch_max_ms=20,
                                rate_limit_per_minute=0)
    beacon = make_beacon(seq=1)
    resend = dict(beacon)
    for body in (beacon, resend):
        response = httpx.post(collector.url + "/beacon", content=json.dumps(body),
                              headers={"Content-Type": "text/plain", "User-Agent": MOBILE_UA})
        assert response.status_code == 204, response.text
    assert await wait_for(conn, "SELECT count(*) FROM rum.page_views_enriched WHERE pv = $1",
                          beacon["pv"], expect=1) == 1
    assert await wait_for(conn, "SELECT sum(rows_written) > 0 FROM binome.ingest_counts"
                          " WHERE minute > now() - interval '5 minutes'")
    assert httpx.get(collector.url + "/readyz").status_code == 200

    writer = await asyncpg.connect(writer_login)
    try:
        report = await maintain(writer, retention_months=25, rollup_lag_days=1)
        assert report is not None and report.retention_skipped
        tomorrow = report.today + dt.timedelta(days=1)
        assert await conn.fetchval("SELECT to_regclass($1)",
                                   f"binome.beacons_{tomorrow:%Y%m%d}") is not None
    finally:
        await writer.close()


async def refused(conn: asyncpg.Connection, statement: str) -> bool:
    try:
        async with conn.transaction():
            await conn.execute(statement)
    except asyncpg.InsufficientPrivilegeError:
        return True
    return False


@pytest.fixture
async def as_role(conn: asyncpg.Connection) -> AsyncIterator[Any]:
    async def become(role: str) -> asyncpg.Connection:
        await conn.execute(f"SET ROLE {role}")
        return conn

    yield become
    await conn.execute("RESET ROLE")


async def test_binome_writer_may_only_write_beacons(as_role: Any) -> None:
    conn = await as_role("binome_writer")
    # What the collector does (collector/writer.py, sites.py): allowed.
    await conn.execute("SELECT site FROM binome.sites LIMIT 1")
    await conn.execute("SELECT site, origin FROM binome.site_origins LIMIT 1")
    await conn.execute("SELECT site, day, pv, seq FROM binome.beacons LIMIT 1")
    await conn.execute("INSERT INTO binome.dead_letters (site, error, record)"
                       " VALUES ('demo', 'roles test', '{}')")
    await conn.execute("INSERT INTO binome.ingest_counts AS c (site, minute, received)"
                       " VALUES ('demo', '2000-01-01', 1) ON CONFLICT (site, minute)"
                       " DO UPDATE SET received = c.received + excluded.received")
    forbidden = [
        "SELECT lcp FROM binome.beacons",
        "SELECT * FROM binome.beacons",
        "UPDATE binome.beacons SET lcp = 0",
        "DELETE FROM binome.beacons",
        "TRUNCATE binome.beacons",
        "SELECT * FROM binome.page_views",
        "UPDATE binome.page_views SET lcp = 0",
        "DELETE FROM binome.scorecard_days",
        "SELECT * FROM binome.dead_letters",
        "INSERT INTO binome.sites (site) VALUES ('intruder')",
        "DELETE FROM binome.site_origins",
        "SELECT * FROM rum.page_views_enriched",
        "CREATE TABLE binome.intruder (site text PRIMARY KEY)",
        "DROP TABLE binome.sites",
        "SELECT binome.refold_days('2020-01-01', '2020-01-02')",
        "ALTER TABLE binome.beacons DISABLE TRIGGER fold_page_views",
        # Retention is binome_maintainer's: as the writer it would drop every day.
        "SELECT binome.apply_retention('2100-01-01')",
        "UPDATE binome.retention_policy SET months = 1",
        # An objective's check stores its figures; its definition is the owner's.
        "UPDATE binome.objectives SET target = 1, scope = '{}'",
        "UPDATE binome.objectives SET created_at = now()",
    ]
    assert [s for s in forbidden if not await refused(conn, s)] == []


async def test_binome_analyst_may_only_read_the_rum_views(as_role: Any) -> None:
    conn = await as_role("binome_analyst")
    for view in RUM_VIEWS:
        await conn.fetch(f"SELECT * FROM rum.{view} LIMIT 5")
    forbidden = [
        "SELECT * FROM binome.beacons",
        "SELECT * FROM binome.page_views",
        "SELECT * FROM binome.scorecard_days",
        "SELECT * FROM binome.live_page_views",
        "SELECT * FROM binome.sites",
        "INSERT INTO binome.beacons (site, day, pv, seq, received_at, consent, path)"
        " VALUES ('demo', current_date, 'intruder', 0, now(), 'marketing', '/')",
        "DELETE FROM rum.ingest_health",
        "CREATE VIEW rum.intruder AS SELECT 1",
        "SELECT binome.close_days(current_date)",
        "SELECT binome.ensure_beacon_partition(current_date + 400)",
        # One row per page view: binome_analyst_rows' only (issue 20).
        *(f"SELECT * FROM rum.{view} LIMIT 1" for view in ROW_LEVEL_VIEWS),
        ("SELECT * FROM binome.page_view_facts_of('demo', current_date,"
         " '00000000-0000-0000-0000-000000000000')"),
        "SELECT * FROM binome.live_facts_key",
        "SELECT * FROM binome.live_page_views",
        # The objectives' stored figures: read through rum.objective_results only.
        "UPDATE binome.objectives SET value = 0, checked_at = now()",
        "SELECT notified_status FROM binome.objectives",
    ]
    assert [s for s in forbidden if not await refused(conn, s)] == []


async def test_binome_analyst_rows_reads_the_row_level_views(
    as_role: Any, conn: asyncpg.Connection
) -> None:
    pv = "rowsrole" + secrets.token_hex(4)
    today = await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    await conn.execute("SELECT binome.ensure_beacon_partition($1)", today)
    await conn.execute(
        "INSERT INTO binome.beacons (site, day, pv, seq, received_at, consent, path, lcp)"
        " VALUES ('demo', $1, $2, 0, date_trunc('minute', now()) + interval '17.25 s',"
        " 'performance', '/', 1500)", today, pv)
    await wait_for(conn, "SELECT count(*) FROM rum.page_views_enriched WHERE pv = $1", pv,
                   expect=1)
    rows = await as_role("binome_analyst_rows")
    assert await rows.fetchval("SELECT count(*) FROM rum.page_views_enriched WHERE pv = $1",
                               pv) == 1
    # received_at to the minute (sql/views/10_page_views_enriched.sql, 20_sessions.sql).
    for sql in ("SELECT received_at FROM rum.page_views_enriched WHERE pv = $1",
                "SELECT received_at FROM rum.sessions WHERE landing_pv = $1"):
        received_at = await rows.fetchval(sql, pv)
        assert received_at is not None and (received_at.second, received_at.microsecond) == (0, 0)
    for view in RUM_VIEWS:  # and, as a member of binome_analyst, the grouped ones
        await rows.fetch(f"SELECT * FROM rum.{view} LIMIT 5")
    assert await refused(rows, "SELECT * FROM binome.page_views")


async def test_serve_as_binome_writer_checks_instead_of_migrating(
    writer_login: str, tmp_path: Any
) -> None:
    """The writer may not migrate: with nothing pending it goes on, else it says why."""
    import shutil

    from collector import PROJECT_ROOT, db

    writer = await asyncpg.connect(writer_login)
    try:
        assert await db.migrate_or_check(writer, PROJECT_ROOT / "sql") == []
        sql = tmp_path / "sql"
        shutil.copytree(PROJECT_ROOT / "sql", sql)
        (sql / "migrations" / "9999_later.sql").write_text("SELECT 1;")
        with pytest.raises(PermissionError, match="9999_later"):
            await db.migrate_or_check(writer, sql)
    finally:
        await writer.close()


@pytest.fixture
async def maintainer_login(conn: asyncpg.Connection, database_url: str) -> AsyncIterator[str]:
    async with login_in(conn, database_url, "binome_maintainer") as url:
        yield url


async def test_the_maintainer_cannot_drop_data_newer_than_the_retention_period(
    maintainer_login: str, conn: asyncpg.Connection
) -> None:
    """binome.apply_retention clamps its cutoff to today minus binome.retention_policy's
    months (25 here), whatever the maintainer asks; older days it drops."""
    today = await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    old = today - dt.timedelta(days=40 * 31)
    for day, pv in ((today, "kept" + secrets.token_hex(4)), (old, "old" + secrets.token_hex(4))):
        await conn.execute("SELECT binome.ensure_beacon_partition($1)", day)
        await conn.execute(
            "INSERT INTO binome.beacons (site, day, pv, seq, received_at, consent, path)"
            " VALUES ('demo', $1, $2, 0, $3, 'performance', '/')",
            day, pv, dt.datetime.combine(day, dt.time(12), dt.UTC))
    maintainer = await asyncpg.connect(maintainer_login)
    try:
        assert await maintainer.fetchval("SELECT binome.apply_retention('2100-01-01')") >= 1
        assert await maintainer.fetchval(
            "SELECT binome.retention_cutoff('2100-01-01')") <= today - dt.timedelta(days=25 * 28)
        report = await maintain(maintainer, retention_months=1, rollup_lag_days=1)
        assert report is not None and not report.retention_skipped
        assert report.retention_cutoff <= today - dt.timedelta(days=25 * 28)
        assert await refused(maintainer, "UPDATE binome.retention_policy SET months = 1")
    finally:
        await maintainer.close()
    assert await conn.fetchval("SELECT count(*) FROM binome.beacons WHERE day = $1", today) > 0
    assert await conn.fetchval("SELECT to_regclass($1)", f"binome.beacons_{old:%Y%m%d}") is None


@pytest.fixture
async def analyst_login(conn: asyncpg.Connection, database_url: str) -> AsyncIterator[str]:
    async with login_in(conn, database_url, "binome_analyst") as url:
        yield url


async def test_serve_drops_the_owners_url_once_migrated_and_reads_the_dashboard_as_analyst(
    writer_login: str, analyst_login: str, database_url: str, start_collector: Any
) -> None:
    """The serving process holds neither BINOME_MIGRATION_DATABASE_URL nor the owner's
    URL (not even in the environment it was started with), and /dashboard/data reads
    the rum views through BINOME_DASHBOARD_DATABASE_URL, a binome_analyst login."""
    collector = start_collector(database_url=writer_login, migration_database_url=database_url,
                                dashboard_database_url=analyst_login)
    environ = Path(f"/proc/{collector.process.pid}/environ").read_bytes().split(b"\0")
    assert not [v for v in environ if v.startswith(b"BINOME_MIGRATION_DATABASE_URL=")
                or database_url.encode() in v]
    assert f"BINOME_DATABASE_URL={writer_login}".encode() in environ
    # The busiest site of the shared test database: its figures are computed live
    # (no snapshot here), for longer than httpx's default 5 s on a loaded machine.
    response = httpx.get(collector.url + "/dashboard/data", timeout=60)
    assert response.status_code == 200, response.text
    assert "demo" in response.json()["sites"]
    assert httpx.get(collector.url + "/readyz").status_code == 200
