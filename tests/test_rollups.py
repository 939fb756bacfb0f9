"""Rollups and the live part give the figures of the straightforward definitions.

tests/reference_views.sql holds the views as first written, computed from raw
beacons at every query. Synthetic beacons (tests/synthetic.py) are loaded
directly, then the rum views must answer exactly what the reference answers:
all live, after days are rolled up, after late beacons change rolled-up days
(dirty), and after those are rolled up again.
"""

from __future__ import annotations

import asyncio
import json
import contextlib
import datetime as dt
import random
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from collector import PROJECT_ROOT, db
from collector.maintenance import maintain, snapshot_periodically
from collector.report import p75_from_bins
from collector.settings import Settings
from tests.conftest import _create_database, _drop_database, migrated_database
from tests.synthetic import continuation_beacons, insert_beacons, synthetic_beacons

START = dt.date(2031, 3, 10)  # far from the real date: only the dates we pass matter
REFERENCE = (PROJECT_ROOT / "tests" / "reference_views.sql").read_text()
VIEWS = {
    "page_views_enriched": None,
    "sessions": None,
    "scorecard_daily": None,
    "perf_vs_conversion": None,
    "release_comparison": None,
}


@pytest.fixture(scope="module")
async def rollup_db(server_url: str) -> AsyncIterator[str]:
    async with migrated_database(server_url, REFERENCE) as url:
        yield url


@pytest.fixture
async def rconn(rollup_db: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(rollup_db)
    yield connection
    await connection.close()


async def common_columns(conn: asyncpg.Connection, view: str) -> str:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'reference'"
        " AND table_name = $1 ORDER BY ordinal_position", view)
    return ", ".join(r["column_name"] for r in rows)


async def assert_same_as_reference(conn: asyncpg.Connection) -> None:
    await conn.execute("REFRESH MATERIALIZED VIEW reference.page_views_enriched;"
                       " REFRESH MATERIALIZED VIEW reference.sessions")
    # The facts are the page views, one row each, on the same day.
    assert await conn.fetchval(
        "SELECT count(*) FROM binome.page_view_facts f FULL JOIN binome.page_views p"
        " USING (site, pv) WHERE f.day IS DISTINCT FROM p.day") == 0
    for view in VIEWS:
        columns = await common_columns(conn, view)
        for left, right in (("rum", "reference"), ("reference", "rum")):
            extra = await conn.fetch(
                f"SELECT {columns} FROM {left}.{view}"
                f" EXCEPT ALL SELECT {columns} FROM {right}.{view}")
            assert not extra, f"{left}.{view} has rows {right}.{view} has not: {extra[:3]}"
        count = await conn.fetchval(f"SELECT count(*) FROM rum.{view}")
        assert count > 0, view
    # rum.campaign_histograms is rum.scorecard_histograms summed over devices
    # and countries, whichever days are rolled up, live or snapshotted.
    summed = ("SELECT day, site, channel, utm_campaign, metric, bin, bin_lower, bin_upper,"
              " sum(page_views)::bigint FROM rum.scorecard_histograms"
              " GROUP BY day, site, channel, utm_campaign, metric, bin, bin_lower, bin_upper")
    coarse = ("SELECT day, site, channel, utm_campaign, metric, bin, bin_lower, bin_upper,"
              " page_views FROM rum.campaign_histograms")
    for left, right in ((coarse, summed), (summed, coarse)):
        assert not await conn.fetch(f"{left} EXCEPT ALL {right}")
    assert await conn.fetchval("SELECT count(*) FROM rum.campaign_histograms") > 0
    # rum.site_daily is rum.scorecard_daily's groups summed per site and day.
    per_group = ("SELECT day, site, sum(page_views)::bigint, coalesce(sum(page_views)"
                 " FILTER (WHERE channel <> '(no consent)'), 0)::bigint"
                 " FROM rum.scorecard_daily GROUP BY day, site")
    site_days = "SELECT day, site, page_views, marketing_page_views FROM rum.site_daily"
    for left, right in ((per_group, site_days), (site_days, per_group)):
        assert not await conn.fetch(f"{left} EXCEPT ALL {right}")
    # binome.release_bins is every release's bins of its closed days summed
    # (sql/functions/45_rollup_sums.sql), whatever rollups, snapshots, closing days and
    # retention did to them.
    per_release = ("SELECT r.site, r.release, r.metric, u.bin, u.n FROM binome.release_bins r,"
                   " unnest(r.bins, r.counts) AS u(bin, n)")
    per_day = ("SELECT r.site, r.release, r.metric, u.bin, sum(u.n)::bigint"
               " FROM binome.release_day_bins r"
               " JOIN binome.rollup_state s ON s.site = r.site AND r.day <= s.rolled_through,"
               " unnest(r.bins, r.counts) AS u(bin, n)"
               " GROUP BY 1, 2, 3, 4")
    for left, right in ((per_release, per_day), (per_day, per_release)):
        assert not await conn.fetch(f"{left} EXCEPT ALL {right}")


async def rollup_status(conn: asyncpg.Connection) -> tuple[int, int]:
    rolled = await conn.fetchval("SELECT count(DISTINCT (site, day)) FROM binome.scorecard_days")
    dirty = await conn.fetchval("SELECT count(*) FROM binome.rollup_dirty")
    return rolled, dirty


async def test_same_figures_live_rolled_up_dirty_and_rolled_up_again(
    rconn: asyncpg.Connection
) -> None:
    rng = random.Random(4)
    rows = synthetic_beacons(rng, "acme", START, days=4, sessions=700, prefix="a")
    rows += synthetic_beacons(rng, "beta", START, days=4, sessions=150, prefix="b")
    await insert_beacons(rconn, rows, rng)
    await rconn.execute("ANALYZE")
    assert await rconn.fetchval("SELECT count(*) FROM binome.page_views") == \
        await rconn.fetchval("SELECT count(DISTINCT (site, pv)) FROM binome.beacons")
    await assert_same_as_reference(rconn)  # all live

    report = await maintain(rconn, retention_months=1000, rollup_lag_days=1,
                            today=START + dt.timedelta(days=4))
    assert report is not None and report.closed_through == START + dt.timedelta(days=2)
    assert len(report.rolled_up) == 6 and not report.still_dirty  # 3 days x 2 sites
    assert await rollup_status(rconn) == (6, 0)
    await assert_same_as_reference(rconn)  # 3 days rolled up, 2 live

    # Late beacons for rolled-up days: the next seq of old page views, new page
    # views of old sessions (some after midnight), new sessions.
    late = continuation_beacons(random.Random(5), rows, 80) + synthetic_beacons(
        random.Random(6), "acme", START, days=3, sessions=40, prefix="late")
    await insert_beacons(rconn, late, rng)
    _, dirty = await rollup_status(rconn)
    assert dirty >= 2
    await assert_same_as_reference(rconn)  # dirty days computed live

    report = await maintain(rconn, retention_months=1000, rollup_lag_days=1,
                            today=START + dt.timedelta(days=4))
    assert report is not None and len(report.rolled_up) == dirty
    assert (await rollup_status(rconn))[1] == 0
    await assert_same_as_reference(rconn)

    report = await maintain(rconn, retention_months=1000, rollup_lag_days=0,
                            today=START + dt.timedelta(days=30))
    assert report is not None
    await assert_same_as_reference(rconn)  # everything rolled up
    live = await rconn.fetchval("SELECT count(*) FROM binome.live_page_views")
    assert live == 0


async def test_histograms_give_exact_shares_and_p75_within_a_bin(
    rconn: asyncpg.Connection
) -> None:
    """Re-aggregated across days and groups: good/poor shares exact, p75 within one bin."""
    checked = 0
    for metric, good, poor in (("lcp", 2500, 4000), ("inp", 200, 500), ("cls", 0.1, 0.25)):
        rows = await rconn.fetch(f"""
            SELECT site, channel, count({metric}) AS n,
                   count(*) FILTER (WHERE {metric} <= {good}) AS good,
                   count(*) FILTER (WHERE {metric} > {poor}) AS poor,
                   percentile_cont(0.75) WITHIN GROUP (ORDER BY {metric}) AS p75
            FROM (SELECT p.site, p.{metric}, CASE WHEN p.consent = 'marketing' THEN s.channel
                                   ELSE '(no consent)' END AS channel
                  FROM reference.page_views_enriched p JOIN reference.sessions s USING (site, sid)
                  ) AS grouped
            GROUP BY site, channel HAVING count({metric}) > 0""")
        for row in rows:
            bins = await rconn.fetch(
                "SELECT bin, bin_lower, bin_upper, sum(page_views)::bigint AS n"
                " FROM rum.scorecard_histograms WHERE site = $1 AND channel = $2 AND metric = $3"
                " GROUP BY bin, bin_lower, bin_upper ORDER BY bin",
                row["site"], row["channel"], metric)
            assert sum(b["n"] for b in bins) == row["n"]
            assert sum(b["n"] for b in bins if b["bin_upper"] is not None
                       and b["bin_upper"] <= good) == row["good"]
            assert sum(b["n"] for b in bins if b["bin_lower"] is not None
                       and b["bin_lower"] >= poor) == row["poor"]
            estimate = p75_from_bins([(b["bin_lower"], b["bin_upper"], b["n"]) for b in bins])
            assert estimate is not None
            width = max(bin_width(metric, row["p75"]), bin_width(metric, estimate))
            assert abs(estimate - row["p75"]) <= width, (metric, row, estimate)
            checked += 1
    assert checked >= 10


def bin_width(metric: str, value: float) -> float:
    """Width of the histogram bin holding value (sql/functions/20_histograms.sql)."""
    fine_step, fine_to, coarse_step = {"lcp": (100, 10000, 1000), "fcp": (100, 10000, 1000),
                                       "inp": (10, 1000, 100), "ttfb": (50, 5000, 500),
                                       "cls": (0.01, 1, 0.1)}[metric]
    return fine_step if value <= fine_to else coarse_step


async def test_retention_drops_old_days(rconn: asyncpg.Connection) -> None:
    old = dt.date(2031, 1, 5)
    rows = synthetic_beacons(random.Random(7), "acme", old, days=1, sessions=5, prefix="old")
    await insert_beacons(rconn, rows, random.Random(7))
    partition = f"binome.beacons_{old:%Y%m%d}"
    assert await rconn.fetchval("SELECT to_regclass($1)", partition) is not None
    report = await maintain(rconn, retention_months=2, rollup_lag_days=1,
                            today=dt.date(2031, 3, 20))
    assert report is not None and report.retention_cutoff == dt.date(2031, 1, 20)
    assert report.partitions_dropped >= 1
    assert await rconn.fetchval("SELECT to_regclass($1)", partition) is None
    for table in ("page_views", "scorecard_days", "campaign_day_bins", "release_days",
                  "landing_days"):
        assert await rconn.fetchval(
            f"SELECT count(*) FROM binome.{table} WHERE day < '2031-01-20'") == 0
    assert await rconn.fetchval("SELECT to_regclass('binome.beacons_20310320')") is not None
    assert await rconn.fetchval("SELECT to_regclass('binome.beacons_20310321')") is not None
    await assert_same_as_reference(rconn)


async def test_release_bins_follow_closed_days_only(rconn: asyncpg.Connection) -> None:
    """binome.release_bins sums a release's bins of its closed days
    (sql/functions/45_rollup_sums.sql): a day counts once rolled_through passes it,
    and release_day_bins cannot be updated in place, which would leave the sums behind."""
    release_bins = ("SELECT counts FROM binome.release_bins"
                    " WHERE site = 'upd' AND release = 'r1' AND metric = 'lcp'")
    await rconn.execute("INSERT INTO binome.rollup_state VALUES ('upd', '2031-02-01')")
    try:
        await rconn.execute("INSERT INTO binome.release_day_bins VALUES"
                            " ('2031-02-01', 'upd', 'r1', 'lcp', '{3}', '{5}'),"
                            " ('2031-02-02', 'upd', 'r1', 'lcp', '{3}', '{7}')")
        assert await rconn.fetchval(release_bins) == [5]  # 2031-02-02 is not closed yet
        await rconn.execute("UPDATE binome.rollup_state SET rolled_through = '2031-02-02'"
                            " WHERE site = 'upd'")
        assert await rconn.fetchval(release_bins) == [12]
        with pytest.raises(asyncpg.RaiseError, match="only inserted into and deleted from"):
            await rconn.execute("UPDATE binome.release_day_bins SET counts = '{6}'"
                                " WHERE site = 'upd'")
        await rconn.execute("DELETE FROM binome.release_day_bins"
                            " WHERE site = 'upd' AND day = '2031-02-01'")
        assert await rconn.fetchval(release_bins) == [7]
    finally:
        await rconn.execute("DELETE FROM binome.release_day_bins WHERE site = 'upd'")
        await rconn.execute("DELETE FROM binome.rollup_state WHERE site = 'upd'")
    assert await rconn.fetchval(
        "SELECT count(*) FROM binome.release_bins WHERE site = 'upd'") == 0


async def test_scorecard_days_cannot_be_updated_in_place(rconn: asyncpg.Connection) -> None:
    """binome.site_days follows inserts and deletes of scorecard_days only
    (sql/functions/45_rollup_sums.sql)."""
    with pytest.raises(asyncpg.RaiseError, match="only inserted into and deleted from"):
        await rconn.execute("UPDATE binome.scorecard_days SET page_views = page_views + 1")


async def test_concurrent_runs_do_not_collide(rollup_db: str) -> None:
    conns = [await asyncpg.connect(rollup_db) for _ in range(3)]
    try:
        async with conns[0].transaction():
            await conns[0].execute("SELECT pg_advisory_xact_lock(0)")  # nothing: just warm up
        locked = await conns[0].fetchval(
            "SELECT pg_try_advisory_lock($1)", 0x62696E6F6D656D)
        assert locked
        assert await maintain(conns[1], retention_months=1000, rollup_lag_days=1) is None
        await conns[0].execute("SELECT pg_advisory_unlock($1)", 0x62696E6F6D656D)
        results = await asyncio.gather(*(
            maintain(c, retention_months=1000, rollup_lag_days=1) for c in conns[1:]))
        assert any(r is not None for r in results)
    finally:
        for c in conns:
            await c.close()


async def test_a_page_view_moves_to_an_earlier_day(rconn: asyncpg.Connection) -> None:
    """A late beacon stored under its receive day arrives first; the page view's
    earlier beacon then moves it (docs/beacon-format.md: day is its earliest beacon's)."""
    early, late = dt.date(2031, 4, 2), dt.date(2031, 4, 6)
    for day in (early, late):
        await rconn.execute("SELECT binome.ensure_beacon_partition($1)", day)
    insert = ("INSERT INTO binome.beacons (site, day, pv, seq, sid, received_at, consent, path, lcp)"
              " VALUES ('acme', $1, 'movingpv', $2, 'movingsid', $3, 'marketing', '/', $4)")
    await rconn.execute(insert, late, 1, dt.datetime(2031, 4, 6, 9, tzinfo=dt.UTC), 3000.0)
    assert await rconn.fetchval(
        "SELECT day FROM binome.page_view_facts WHERE pv = 'movingpv'") == late
    await rconn.execute(insert, early, 0, dt.datetime(2031, 4, 2, 9, tzinfo=dt.UTC), 1000.0)
    rows = await rconn.fetch("SELECT day, lcp FROM binome.page_view_facts WHERE pv = 'movingpv'")
    assert [(r["day"], r["lcp"]) for r in rows] == [(early, 3000.0)]
    await assert_same_as_reference(rconn)


@pytest.fixture
async def snapshot_db(server_url: str) -> AsyncIterator[str]:
    """A database of its own: snapshots would change what the other tests read."""
    async with migrated_database(server_url, REFERENCE) as url:
        yield url


@pytest.fixture
async def snapshot_conn(snapshot_db: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(snapshot_db)
    yield connection
    await connection.close()


async def page_views_per_day(conn: asyncpg.Connection) -> dict[tuple[str, dt.date], int]:
    rows = await conn.fetch("SELECT site, day, sum(page_views)::bigint AS n"
                            " FROM rum.scorecard_daily GROUP BY site, day")
    return {(r["site"], r["day"]): r["n"] for r in rows}


async def test_busy_live_days_read_from_their_snapshot_while_it_is_fresh(
    snapshot_conn: asyncpg.Connection
) -> None:
    conn = snapshot_conn
    rng = random.Random(11)
    today = START + dt.timedelta(days=2)
    rows = synthetic_beacons(rng, "acme", START, days=3, sessions=300, prefix="a")
    rows += synthetic_beacons(rng, "beta", START, days=3, sessions=80, prefix="b")
    await insert_beacons(conn, rows, rng)
    live_days = {(r["site"], r["day"]): r["n"] for r in await conn.fetch(
        "SELECT site, day, count(*) AS n FROM binome.page_views WHERE day > $1"
        " GROUP BY site, day", START)}

    # A threshold no day reaches: nothing is snapshotted, everything stays live.
    report = await maintain(conn, retention_months=1000, rollup_lag_days=1, today=today,
                            snapshot_page_views=10**9)
    assert report is not None and report.snapshots == []
    live_before = await conn.fetchval("SELECT count(*) FROM binome.live_page_views")
    assert live_before == sum(live_days.values())

    # Every site of each live day (tomorrow's page views after midnight too).
    report = await maintain(conn, retention_months=1000, rollup_lag_days=1, today=today,
                            snapshot_page_views=1)
    assert report is not None
    assert {(site, day): n for site, day, n in report.snapshots} == live_days
    assert await conn.fetchval("SELECT count(*) FROM binome.live_page_views") == 0
    await assert_same_as_reference(conn)  # the snapshot's figures are exact

    # New page views while the snapshot is fresh: the views show the snapshot.
    shown = await page_views_per_day(conn)
    newer = synthetic_beacons(random.Random(12), "acme", today, days=1, sessions=30,
                              prefix="newer")
    await insert_beacons(conn, newer, rng)
    assert await page_views_per_day(conn) == shown

    # Once it is no longer fresh, the day is computed live again, to the last beacon.
    await conn.execute("UPDATE binome.live_snapshots SET valid_until = now() - interval '1 s'")
    assert await page_views_per_day(conn) != shown
    await assert_same_as_reference(conn)

    # A new snapshot includes them; the day it covers is no longer read live.
    report = await maintain(conn, retention_months=1000, rollup_lag_days=1, today=today,
                            snapshot_page_views=1)
    assert report is not None and len(report.snapshots) == len(live_days)
    assert await conn.fetchval("SELECT count(*) FROM binome.live_page_views") == 0
    await assert_same_as_reference(conn)

    # The day closes: its rollup replaces the snapshot, which is forgotten.
    report = await maintain(conn, retention_months=1000, rollup_lag_days=1,
                            today=today + dt.timedelta(days=1))
    assert report is not None and ("acme", START + dt.timedelta(days=1)) in report.rolled_up
    assert await conn.fetchval(
        "SELECT count(*) FROM binome.live_snapshots l JOIN binome.rollup_state s USING (site)"
        " WHERE l.day <= s.rolled_through") == 0
    await conn.execute("UPDATE binome.live_snapshots SET valid_until = now() - interval '1 s'")
    await assert_same_as_reference(conn)


async def test_serve_refreshes_snapshots_on_its_own(
    snapshot_db: str, snapshot_conn: asyncpg.Connection
) -> None:
    conn = snapshot_conn
    rng = random.Random(13)
    day = (await conn.fetchval("SELECT now() AT TIME ZONE 'UTC'")).date()
    await insert_beacons(conn, synthetic_beacons(rng, "acme", day, days=1, sessions=20,
                                                 prefix="s"), rng)
    settings = Settings(live_snapshot_seconds=0.2, live_snapshot_page_views=1)
    task = asyncio.create_task(snapshot_periodically(snapshot_db, settings))
    try:
        for _ in range(100):
            taken = await conn.fetch("SELECT taken_at FROM binome.live_snapshots WHERE day = $1",
                                     day)
            if len(taken) == 1:
                first = taken[0]["taken_at"]
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no snapshot taken")
        for _ in range(100):  # and again, an interval later
            if await conn.fetchval("SELECT taken_at FROM binome.live_snapshots WHERE day = $1",
                                   day) > first:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the snapshot was not refreshed")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await conn.fetchval("SELECT count(*) FROM binome.live_page_views") == 0


async def test_live_page_views_has_the_facts_columns(rconn: asyncpg.Connection) -> None:
    """binome.live_page_views lists page_view_facts' columns itself (its day is
    the live day's): a column added to the table must be added to the view."""
    columns = ("SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute"
               " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped")
    assert await rconn.fetchval(columns, "binome.live_page_views") == \
        await rconn.fetchval(columns, "binome.page_view_facts")


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan."""
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


async def test_a_live_day_is_read_from_its_own_partition(rconn: asyncpg.Connection) -> None:
    """What `binome maintain` rolls up, one site-day at a time, reads that site's
    page views of that day only, not every live day's nor the other sites'
    (sql/views/05_live_page_views.sql)."""
    first = dt.date(2031, 7, 1)
    for site, seed in (("gamma", 9), ("epsilon", 10)):
        rows = synthetic_beacons(random.Random(seed), site, first, days=4, sessions=60,
                                 prefix=site[0])
        await insert_beacons(rconn, rows, random.Random(seed))
    day = first + dt.timedelta(days=2)
    [plan] = json.loads(await rconn.fetchval(
        "EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM binome.scorecard_live"
        " WHERE site = 'gamma' AND day = $1", day))
    [facts] = [node for node in plan_nodes(plan["Plan"])
               if node.get("Function Name") == "page_view_facts_of"]
    # Called for that one site-day of the eight live ones, and read its rows only.
    assert facts["Actual Loops"] == 1
    assert facts["Actual Rows"] == await rconn.fetchval(
        "SELECT count(*) FROM binome.page_view_facts WHERE day = $1 AND site = 'gamma'",
        day) > 0
    assert await rconn.fetchval("SELECT count(*) FROM binome.page_view_facts"
                                " WHERE day = $1 AND site = 'epsilon'", day) > 0
    assert await rconn.fetchval("SELECT current_setting('jit')") == "off"  # the database's setting


@pytest.mark.parametrize("view", ["scorecard_daily", "scorecard_histograms",
                                  "campaign_histograms", "perf_vs_conversion",
                                  "release_comparison", "comparisons"])
async def test_the_grouped_views_plan_no_partition(rconn: asyncpg.Connection, view: str) -> None:
    """The grouped views' plans hold no partition of page_view_facts (a live day
    is planned when it is read), so planning them costs the same with 25 months
    of daily partitions as with one."""
    more_partitions = rconn.transaction()
    await more_partitions.start()
    try:
        await rconn.execute("SELECT binome.ensure_beacon_partition(d::date) FROM generate_series("
                            "date '2031-01-01', date '2031-01-20', interval '1 day') AS d")
        [plan] = json.loads(await rconn.fetchval(
            f"EXPLAIN (FORMAT JSON) SELECT * FROM rum.{view}"))
    finally:
        await more_partitions.rollback()
    relations = {node.get("Relation Name") for node in plan_nodes(plan["Plan"])}
    assert not {r for r in relations if r and r.startswith("page_view_facts")}
    assert any(node.get("Function Name") == "page_view_facts_of"
               for node in plan_nodes(plan["Plan"]))


async def test_the_views_can_run_in_parallel(rconn: asyncpg.Connection) -> None:
    """No function the views call is PARALLEL UNSAFE (the default), which would
    keep every query over them from using parallel workers."""
    unsafe = await rconn.fetch("""
        SELECT DISTINCT p.oid::regprocedure::text AS function
        FROM pg_depend d
        JOIN pg_rewrite w ON w.oid = d.objid
        JOIN pg_proc p ON p.oid = d.refobjid
        JOIN pg_class v ON v.oid = w.ev_class
        WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_proc'::regclass
          AND v.relnamespace IN ('rum'::regnamespace, 'binome'::regnamespace)
          AND p.pronamespace IN ('rum'::regnamespace, 'binome'::regnamespace)
          AND p.proparallel = 'u'""")
    assert [r["function"] for r in unsafe] == []
    # The one the live part calls is among those looked at.
    assert await rconn.fetchval("SELECT proparallel::text FROM pg_proc"
                                " WHERE oid = 'binome.live_days()'::regprocedure") == "r"


async def test_the_bin_edges_are_the_steps_written_out(rconn: asyncpg.Connection) -> None:
    """The histogram edges are array literals (cheap for the planner to fold,
    sql/functions/20_histograms.sql), the very doubles the step definitions give,
    for every metric."""
    rows = await rconn.fetch("""
        SELECT m, binome.metric_bin_edges(m) = binome.metric_bin_edges_from_steps(m) AS same,
               binome.metric_bin_neg_edges(m) = (
                   SELECT array_agg(-e ORDER BY -e)
                   FROM unnest(binome.metric_bin_edges_from_steps(m)) AS e) AS same_negated,
               cardinality(binome.metric_bin_edges(m)) AS edges
        FROM unnest(ARRAY['lcp', 'fcp', 'inp', 'ttfb', 'cls', 'lcp_fine', 'inp_fine',
                          'cls_fine']) AS m""")
    assert [(r["m"], r["same"], r["same_negated"]) for r in rows] == [
        (r["m"], True, True) for r in rows]
    assert {r["m"]: r["edges"] for r in rows}["lcp_fine"] == 1000 + 200
    body = await rconn.fetchval("SELECT prosrc FROM pg_proc"
                                " WHERE oid = 'binome.metric_bin_edges(text)'::regprocedure")
    assert "generate_series" not in body


async def test_one_day_of_page_views_is_planned_as_a_fraction_of_the_table(
        server_url: str) -> None:
    """The planner expects a query for one day of rum.page_views_enriched to read
    that day, not the table (the index page_views_day): page views are stored in day
    order, which it credits to a single-column index only. Discounted, as it was
    for (day, site), one day of 31 at 10 million page views was costed as a
    whole table and read as one, history included. Costs are compared because
    which plan wins depends on the table's size; the estimate it wins by does not."""
    url = await _create_database(server_url)
    conn = await db.connect(url)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        first = dt.date(2031, 9, 1)
        rng = random.Random(15)
        for offset in range(12):  # day after day, as a collector stores them
            await insert_beacons(conn, synthetic_beacons(
                rng, "delta", first + dt.timedelta(days=offset), days=1, sessions=400,
                prefix=f"d{offset}"), rng)
        await conn.execute("ANALYZE binome.page_views")
        day = first + dt.timedelta(days=5)
        query = "SELECT count(*), avg(lcp) FROM rum.page_views_enriched"

        async def cost(where: str, *args: object) -> float:
            [plan] = json.loads(await conn.fetchval(
                f"EXPLAIN (FORMAT JSON) {query} {where}", *args))
            return plan["Plan"]["Total Cost"]

        assert await cost("WHERE day = $1", day) < 0.3 * await cost("")
        [plan] = json.loads(await conn.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {query} WHERE day = $1", day))
        read = sum(node["Actual Rows"] * node["Actual Loops"]
                   for node in plan_nodes(plan["Plan"])
                   if node.get("Relation Name") == "page_views")
        assert read == await conn.fetchval(
            "SELECT count(*) FROM binome.page_views WHERE day = $1", day) > 0
    finally:
        await conn.close()
        await _drop_database(server_url, url)


@pytest.mark.parametrize("view", ["scorecard_histograms", "campaign_histograms",
                                  "release_comparison"])
async def test_the_stored_bins_are_unnested_as_a_stream(rconn: asyncpg.Connection,
                                                        view: str) -> None:
    """The views unnest the rollups' bin arrays in their select list (ProjectSet),
    not as functions in FROM, whose every call fills a tuplestore before it is
    read: 2.4 times slower over every bin of 30 days (sql/views/31)."""
    [plan] = json.loads(await rconn.fetchval(f"EXPLAIN (FORMAT JSON) SELECT * FROM rum.{view}"))
    nodes = plan_nodes(plan["Plan"])
    assert not [n for n in nodes if n.get("Function Name") == "unnest"]
    assert any(n["Node Type"] == "ProjectSet" for n in nodes)


async def test_the_rollup_groups_by_hashing(rconn: asyncpg.Connection) -> None:
    """write_rollup plans without sorts where hashing can group (sql/functions/40_rollups.sql):
    the planner expects a site-day of 25,000 page views from page_view_facts_of
    (its ROWS) and sorted a busy day's hundreds of thousands by group, twice as slow. A later
    CREATE OR REPLACE of the function drops the setting unless it says it again."""
    config = await rconn.fetchval("SELECT proconfig FROM pg_proc"
                                  " WHERE oid = 'binome.write_rollup(text, date)'::regprocedure")
    assert "enable_sort=off" in config
