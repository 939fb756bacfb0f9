"""`binome serve --demo` (collector/demo.py) and `binome site remove` (issue 24).

The demo is seeded once, by `binome serve --demo` run as `make run` runs it, on
a database of this module; the tests read what the rum views make of it.
`site remove` runs on a copy of that database (CREATE DATABASE ... TEMPLATE).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from collector.demo import DAYS, SITE
from tests.conftest import free_port, with_database
from tests.test_cli import BINOME, binome


@dataclass(frozen=True)
class Demo:
    url: str  # the seeded database
    output: str  # what `binome serve --demo` printed


async def _create(server: str, name: str, template: str | None = None) -> str:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"'
                           + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await conn.close()
    return with_database(server, name)


async def _drop(server: str, name: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _serve_demo(url: str) -> tuple[str, int]:
    """`binome serve --demo` until ready (it seeds before it listens: up to a
    minute on a busy machine); what it printed, and the worst status of the demo
    pages."""
    port = free_port()
    env = {**os.environ, "BINOME_DATABASE_URL": url, "BINOME_MAINTENANCE_MINUTES": "0",
           "BINOME_OBJECTIVE_CHECK_MINUTES": "0"}
    process = subprocess.Popen([*BINOME, "serve", "--port", str(port), "--demo"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "not ready"
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        page = httpx.get(base + "/")
        assert 'src="/binome.js"' in page.text and 'data-site="demo"' in page.text
        product = httpx.get(base + "/demo/product.html")
        status = max(page.status_code, product.status_code)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    assert process.stdout is not None
    return process.stdout.read().decode(), status


@pytest.fixture(scope="module")
def demo(server_url: str) -> Iterator[Demo]:
    name = "binome_test_demo_" + secrets.token_hex(4)
    url = asyncio.run(_create(server_url, name))
    try:
        output, status = _serve_demo(url)
        assert status == 200  # contract section 1: `make run` serves the demo page at /
        yield Demo(url, output)
    finally:
        asyncio.run(_drop(server_url, name))


@pytest.fixture
async def demo_conn(demo: Demo) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(demo.url)
    yield conn
    await conn.close()


async def test_serve_demo_seeds_30_days_ending_today(demo: Demo,
                                                     demo_conn: asyncpg.Connection) -> None:
    assert "demo site seeded" in demo.output, demo.output
    days = await demo_conn.fetch(
        "SELECT day, count(*) AS page_views, count(DISTINCT sid) AS sessions"
        " FROM rum.page_views_enriched WHERE site = $1 GROUP BY day ORDER BY day", SITE)
    # Today's, or yesterday's when midnight passed since the seeding.
    today = days[-1]["day"]
    assert (dt.datetime.now(dt.UTC).date() - today).days <= 1
    assert [r["day"] for r in days] == [today - dt.timedelta(days=n)
                                        for n in range(DAYS - 1, -1, -1)]
    # A few thousand page views a day (today: so far), so nothing reads "too few".
    assert all(1500 <= r["page_views"] <= 5000 for r in days[:-1]), days
    # Closed days are rolled up, as `binome maintain` leaves them.
    rolled_through = await demo_conn.fetchval(
        "SELECT rolled_through FROM binome.rollup_state WHERE site = $1", SITE)
    assert rolled_through == today - dt.timedelta(days=2)
    mix = await demo_conn.fetchrow(
        "SELECT count(DISTINCT device_class) AS devices, count(DISTINCT country) AS countries,"
        " avg((consent = 'marketing')::int) AS marketing,"
        " count(DISTINCT channel) FILTER (WHERE channel <> 'internal') AS channels"
        " FROM rum.page_views_enriched WHERE site = $1", SITE)
    assert mix["devices"] == 3 and mix["countries"] >= 5 and mix["channels"] >= 5
    assert 0.5 < mix["marketing"] < 0.8  # a consent mix: a third at the performance level


async def test_one_release_made_pages_faster_and_one_did_not(
        demo_conn: asyncpg.Connection) -> None:
    verdicts = {r["subject"]: r["verdict"] for r in await demo_conn.fetch(
        "SELECT subject, verdict FROM rum.comparisons"
        " WHERE site = $1 AND kind = 'release' AND metric = 'lcp_p75'", SITE)}
    assert len(verdicts) == 2 and sorted(verdicts.values())[0] == "better", verdicts
    assert sorted(verdicts.values())[1] in ("no change", "worse"), verdicts
    releases = await demo_conn.fetchval(
        "SELECT count(*) FROM rum.release_comparison WHERE site = $1", SITE)
    assert releases == 3


async def test_campaigns_land_on_pages_of_different_speeds(
        demo_conn: asyncpg.Connection) -> None:
    # A campaign's landing page views are those that carry it (later pages of
    # the session carry none).
    landings = await demo_conn.fetch(
        "SELECT utm_campaign, count(*) AS n,"
        " percentile_cont(0.75) WITHIN GROUP (ORDER BY lcp) AS lcp_p75"
        " FROM rum.page_views_enriched WHERE site = $1 AND utm_campaign IS NOT NULL"
        " GROUP BY 1 ORDER BY 3", SITE)
    assert len(landings) >= 3 and all(r["n"] >= 1000 for r in landings), landings
    p75s = [r["lcp_p75"] for r in landings]
    assert sum(later - earlier >= 500 for earlier, later in zip(p75s, p75s[1:])) >= 2, landings
    # The scorecard's daily rows tell the same order, every day readable.
    scorecard = await demo_conn.fetch(
        "SELECT utm_campaign, min(page_views) AS fewest, avg(lcp_p75) AS lcp_p75"
        " FROM (SELECT day, utm_campaign, sum(page_views) AS page_views,"
        "       sum(lcp_p75 * page_views) / sum(page_views) AS lcp_p75"
        "       FROM rum.scorecard_daily WHERE site = $1 AND day < $2"
        "       GROUP BY 1, 2) AS d"
        " WHERE utm_campaign = ANY($3) GROUP BY 1 ORDER BY 3",
        SITE, await demo_conn.fetchval("SELECT max(day) FROM binome.page_views"),
        [r["utm_campaign"] for r in landings])
    assert [r["utm_campaign"] for r in scorecard] == [r["utm_campaign"] for r in landings]
    assert all(r["fewest"] >= 50 for r in scorecard), scorecard


async def test_the_ab_test_shows_a_difference(demo_conn: asyncpg.Connection) -> None:
    rows = {r["metric"]: r for r in await demo_conn.fetch(
        "SELECT metric, verdict, delta FROM rum.comparisons"
        " WHERE site = $1 AND kind = 'ab_variant' AND subject = 'B' AND baseline = 'A'", SITE)}
    assert rows["lcp_p75"]["verdict"] == "better" and rows["lcp_p75"]["delta"] < 0


async def test_conversions_fall_with_speed(demo_conn: asyncpg.Connection) -> None:
    buckets = await demo_conn.fetch(
        "SELECT lcp_bucket_ms < 2000 AS fast, lcp_bucket_ms >= 4000 AS slow,"
        " sum(sessions) AS sessions, 100.0 * sum(conversions) / sum(sessions) AS rate"
        " FROM rum.perf_vs_conversion WHERE site = $1 GROUP BY 1, 2", SITE)
    rate = {(r["fast"], r["slow"]): r for r in buckets}
    fast, middle, slow = rate[(True, False)], rate[(False, False)], rate[(False, True)]
    assert min(fast["sessions"], middle["sessions"], slow["sessions"]) >= 1000, buckets
    assert fast["rate"] > middle["rate"] > slow["rate"] > 0, buckets
    readable = await demo_conn.fetchval(
        "SELECT count(*) FROM rum.perf_vs_conversion"
        " WHERE site = $1 AND lcp_bucket_ms <= 5000 AND NOT too_small", SITE)
    assert readable == 11  # every bucket from 0 to 5 s has enough sessions to read
    worth = await demo_conn.fetchrow(
        "SELECT extra_conversions_low, too_small FROM rum.speed_worth"
        " WHERE site = $1 AND scope = 'site'", SITE)
    assert not worth["too_small"] and worth["extra_conversions_low"] > 0


async def test_the_demo_has_shared_objectives(demo_conn: asyncpg.Connection) -> None:
    stored = await demo_conn.fetch(
        "SELECT name, status FROM binome.objectives WHERE site = $1", SITE)
    statuses = {r["status"] for r in stored}
    assert len(stored) >= 2 and statuses <= {"met", "missed", "at risk"}, stored
    assert "met" in statuses and "missed" in statuses, stored  # the band tells both


async def test_a_restart_does_not_seed_again(demo: Demo,
                                             demo_conn: asyncpg.Connection) -> None:
    before = await demo_conn.fetchval("SELECT count(*) FROM binome.beacons WHERE site = $1",
                                      SITE)
    output, status = _serve_demo(demo.url)
    assert status == 200 and "demo site seeded" not in output, output
    assert await demo_conn.fetchval("SELECT count(*) FROM binome.beacons WHERE site = $1",
                                    SITE) == before
    assert await demo_conn.fetchval("SELECT count(*) FROM binome.objectives WHERE site = $1",
                                    SITE) == 3


# --- binome site remove ---------------------------------------------------------------

async def _rows_of(conn: asyncpg.Connection, site: str) -> dict[str, int]:
    """Rows of `site` in every table of the schema with a site column, found here
    independently of collector/sites.py."""
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.columns c"
        " JOIN pg_class r ON r.relname = c.table_name AND NOT r.relispartition"
        " JOIN pg_namespace n ON n.oid = r.relnamespace AND n.nspname = c.table_schema"
        " WHERE c.table_schema = 'binome' AND c.column_name = 'site'"
        " AND r.relkind IN ('r', 'p')")
    return {t["table_name"]: await conn.fetchval(
        f'SELECT count(*) FROM binome."{t["table_name"]}" WHERE site = $1', site)
        for t in tables}


@pytest.fixture
async def demo_copy(demo: Demo, server_url: str) -> AsyncIterator[str]:
    name = "binome_test_remove_" + secrets.token_hex(4)
    url = await _create(server_url, name, template=urlsplit(demo.url).path.lstrip("/"))
    yield url
    await _drop(server_url, name)


async def test_site_remove_deletes_the_site_and_all_its_data(demo_copy: str) -> None:
    env = {"BINOME_DATABASE_URL": demo_copy}
    conn = await asyncpg.connect(demo_copy)
    try:
        await conn.execute("INSERT INTO binome.sites (site) VALUES ('other')")
        await conn.execute("INSERT INTO binome.ingest_counts (site, minute, received)"
                           " VALUES ('other', now(), 3)")
        before = await _rows_of(conn, SITE)
        # What the demo fills: each of these must go.
        for table in ("beacons", "page_views", "page_view_facts", "scorecard_days",
                      "landing_days", "release_days", "comparison_days", "site_days",
                      "release_bins", "rollup_state", "objectives", "ingest_counts", "sites"):
            assert before[table] > 0, table

        refused = binome("site", "remove", SITE, env=env)
        assert refused.returncode == 2 and "--yes" in refused.stderr, refused.stderr
        assert "page views" in refused.stderr and "Traceback" not in refused.stderr
        assert await _rows_of(conn, SITE) == before  # nothing changed

        done = binome("site", "remove", SITE, "--yes", env=env)
        assert done.returncode == 0, done.stderr
        assert f"site {SITE} removed" in done.stdout
        left = await _rows_of(conn, SITE)
        assert not any(left.values()), {t: n for t, n in left.items() if n}
        for view in ("page_views_enriched", "scorecard_daily", "perf_vs_conversion",
                     "release_comparison", "comparisons", "objectives", "ingest_health"):
            assert not await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM rum.{view} WHERE site = $1)", SITE), view
        # Another site is left as it was.
        assert await conn.fetchval("SELECT received FROM binome.ingest_counts"
                                   " WHERE site = 'other'") == 3
    finally:
        await conn.close()

    unknown = binome("site", "remove", SITE, env=env)
    assert unknown.returncode == 2 and "unknown site" in unknown.stderr
    # Ingest counts are data too; a site without any goes without --yes.
    assert binome("site", "remove", "other", env=env).returncode == 2
    assert binome("site", "add", "fresh", env=env).returncode == 0
    assert binome("site", "remove", "fresh", env=env).returncode == 0


def test_site_remove_refuses_a_bad_name(fresh_database: str) -> None:
    done = binome("site", "remove", "Bad Name", env={"BINOME_DATABASE_URL": fresh_database})
    assert done.returncode == 2 and "invalid site name" in done.stderr
