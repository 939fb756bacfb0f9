"""Migrations (collector/db.py): fresh install, harmless second run, concurrent runs,
functions re-created at every migrate, a database of the squashed chain refused."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from collector import PROJECT_ROOT, db

SQL = PROJECT_ROOT / "sql"
VIEWS = {"page_views_enriched", "scorecard_daily", "perf_vs_conversion",
         "release_comparison", "ingest_health", "sessions", "scorecard_histograms",
         "site_daily"}


async def test_fresh_install_then_second_run(fresh_database: str) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        applied = await db.migrate(conn, SQL)
        assert applied == [m.name for m in db.load_migrations(SQL)]
        assert await db.migrate(conn, SQL) == []
        views = {r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'rum'")}
        assert VIEWS <= views
        recorded = await conn.fetchval("SELECT count(*) FROM binome.schema_migrations")
        assert recorded == len(applied)
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_once(fresh_database: str) -> None:
    conns = [await asyncpg.connect(fresh_database) for _ in range(4)]
    try:
        results = await asyncio.gather(*(db.migrate(c, SQL) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, 0, len(db.load_migrations(SQL))]
    finally:
        for c in conns:
            await c.close()


async def test_contract_columns_of_every_view(conn: asyncpg.Connection) -> None:
    required = {
        "page_views_enriched": "site, pv, sid, received_at, day, consent, path, channel, "
        "utm_source, utm_medium, utm_campaign, device_class, browser, os, country, release, "
        "dims, lcp, inp, cls, fcp, ttfb, converted, revenue",
        "scorecard_daily": "day, site, channel, utm_campaign, device_class, country, page_views, "
        "sessions, lcp_p75, inp_p75, cls_p75, fcp_p75, ttfb_p75, lcp_good_pct, inp_good_pct, "
        "cls_good_pct, cwv_good_pct, conversion_rate, revenue",
        "perf_vs_conversion": "site, lcp_bucket_ms, sessions, conversions, conversion_rate, "
        "bounce_rate",
        "release_comparison": "site, release, first_seen, last_seen, page_views, lcp_p75, "
        "inp_p75, cls_p75, cwv_good_pct, conversion_rate",
        "ingest_health": "minute, site, received, accepted, rejected, rows_written",
    }
    for view, columns in required.items():
        present = {r["column_name"] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'rum' AND table_name = $1", view)}
        missing = {c.strip() for c in columns.split(",")} - present
        assert not missing, f"rum.{view} lacks {missing}"


# The schema's own records and one-row settings (sql/migrations/0003_maintainer.sql):
# not data of a site.
UNKEYED_TABLES = ["schema_migrations", "retention_policy", "live_facts_key"]


async def test_site_is_in_every_key(conn: asyncpg.Connection) -> None:
    """Every primary key and unique constraint starts with site (ready to distribute by site)."""
    rows = await conn.fetch("""
        SELECT t.relname AS tbl, c.conname,
               (SELECT a.attname FROM pg_attribute a
                 WHERE a.attrelid = c.conrelid AND a.attnum = c.conkey[1]) AS first_column
        FROM pg_constraint c
        JOIN pg_class t ON t.oid = c.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'binome' AND c.contype IN ('p', 'u')
          AND t.relname <> ALL($1)""", UNKEYED_TABLES)
    assert rows, "no keys found"
    # session_keys holds one key per day for every site (sql/migrations/0002): a
    # reference table, were the data distributed.
    offenders = [(r["tbl"], r["conname"]) for r in rows
                 if r["first_column"] != "site" and r["tbl"] != "session_keys"]
    assert not offenders
    # Folded page views and every rollup are keyed the same way, and no table
    # escapes the rule by having no primary key.
    keyed = {r["tbl"] for r in rows}
    assert {"page_views", "page_view_facts", "scorecard_days", "scorecard_day_bins", "release_days",
            "release_day_bins", "release_bins", "landing_days", "rollup_state",
            "rollup_dirty"} <= keyed
    tables = {r["relname"] for r in await conn.fetch("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'binome' AND c.relkind IN ('r', 'p')
          AND c.relname <> ALL($1)""", UNKEYED_TABLES)}
    assert tables <= keyed, f"tables without a primary key: {tables - keyed}"


async def test_functions_and_triggers_are_recreated_on_every_migrate(fresh_database: str) -> None:
    """sql/functions/ is applied after the migrations at every migrate, like the
    views: a function or trigger changed by hand is its file's again, and a
    fresh install's definer's functions are revoked from PUBLIC."""
    conn = await asyncpg.connect(fresh_database)
    try:
        await db.migrate(conn, SQL)
        await conn.execute("""
            CREATE OR REPLACE FUNCTION binome.write_rollup(p_site text, p_day date)
            RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';
            DROP TRIGGER fold_page_views ON binome.beacons""")
        assert await db.migrate(conn, SQL) == []
        config = await conn.fetchval("SELECT proconfig FROM pg_proc"
                                     " WHERE oid = 'binome.write_rollup(text, date)'::regprocedure")
        assert "enable_sort=off" in config
        assert await conn.fetchval("SELECT count(*) FROM pg_trigger"
                                   " WHERE tgrelid = 'binome.beacons'::regclass"
                                   " AND tgname = 'fold_page_views'") == 1
        assert not await conn.fetchval(
            "SELECT has_function_privilege('public', 'binome.refold_days(date, date)', 'EXECUTE')")
    finally:
        await conn.close()


async def test_a_database_of_the_squashed_chain_is_refused(fresh_database: str) -> None:
    """A pre-release database, migrated by the chain that the baseline replaced,
    is refused with one line saying what to do, and left as it is."""
    conn = await asyncpg.connect(fresh_database)
    try:
        await conn.execute("""
            CREATE SCHEMA binome;
            CREATE TABLE binome.schema_migrations (
                version integer PRIMARY KEY, name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO binome.schema_migrations (version, name)
            VALUES (1, '0001_storage'), (2, '0002_page_views_and_rollups')""")
        for run in (db.migrate, db.migrate_or_check):
            with pytest.raises(db.SchemaMismatchError,
                               match=r"0001_storage, 0002_page_views_and_rollups.*recreate it"):
                await run(conn, SQL)
        assert await conn.fetchval("SELECT to_regclass('binome.beacons')") is None
    finally:
        await conn.close()
