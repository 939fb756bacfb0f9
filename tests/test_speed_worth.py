"""rum.speed_worth (issue 21): the conversions and revenue the last 28 days would
have had if the sessions landing on slow pages had converted like those landing
on fast ones, with its 95 % interval, for the site, each channel and campaign."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest

from collector.maintenance import maintain
from tests.conftest import reference_connection
from tests.synthetic import (Row, _row, continuation_beacons, insert_beacons,
                             synthetic_beacons)
from tests.test_comparisons import reference_newcombe

SITE = "worth"
TODAY = dt.datetime.now(dt.UTC).date()


def session(sid: str, day: dt.date, *, channel: str | None, campaign: str | None, lcp: float | None,
            converted: bool = False, revenue: str | None = None,
            consent: str = "marketing") -> list[Row]:
    """A landing page view with the session's channel and campaign; a converting
    session converts on a second page view, reached from the first (internal)."""
    start = dt.datetime.combine(day, dt.time(10), dt.UTC) + dt.timedelta(
        seconds=int(sid.rsplit("-", 1)[1]))
    marketing = consent == "marketing"
    rows = [_row(site=SITE, day=day, pv=sid + "a", seq=0, sid=sid, received_at=start, t0=start,
                 consent=consent, path="/", channel=channel if marketing else None,
                 utm_campaign=campaign if marketing else None, lcp=lcp, cls=0.01)]
    if converted:
        later = start + dt.timedelta(seconds=30)
        rows.append(_row(site=SITE, day=day, pv=sid + "b", seq=0, sid=sid, received_at=later,
                         t0=later, consent=consent, path="/cart", channel="internal", lcp=900.0,
                         event_count=1, revenue=Decimal(revenue) if revenue else None,
                         events=json.dumps([{"name": "purchase", "value": revenue}])))
    return rows


def group(prefix: str, sessions: int, conversions: int, *, fast: bool, channel: str | None,
          campaign: str | None, revenue: str, day: dt.date = TODAY - dt.timedelta(days=3),
          consent: str = "marketing", lcp: float | None = 0) -> list[Row]:
    """`sessions` sessions landing fast (LCP <= 2.5 s, some exactly on it) or slow
    (over it, some by a hair), the first `conversions` of them converting."""
    rows: list[Row] = []
    for i in range(sessions):
        value = lcp if lcp != 0 else (
            (2500.0 if i % 10 == 0 else 1800.0) if fast else (2500.001 if i % 10 == 0 else 4200.0))
        rows += session(f"{prefix}-{i}", day, channel=channel, campaign=campaign, lcp=value,
                        converted=i < conversions, revenue=revenue, consent=consent)
    return rows


@pytest.fixture
async def worth(conn: asyncpg.Connection) -> dict[tuple[str, str], asyncpg.Record]:
    rows = (
        # Fast landers convert at 10 %, slow ones at 5 %, in every channel.
        group("bf-fast", 300, 30, fast=True, channel="email", campaign="black-friday", revenue="80")
        + group("bf-slow", 200, 10, fast=False, channel="email", campaign="black-friday",
                revenue="80")
        + group("se-fast", 200, 20, fast=True, channel="search", campaign=None, revenue="20")
        + group("se-slow", 100, 5, fast=False, channel="search", campaign=None, revenue="20")
        + group("tiny-fast", 20, 2, fast=True, channel="social", campaign="tiny", revenue="20")
        + group("tiny-slow", 20, 1, fast=False, channel="social", campaign="tiny", revenue="20")
        # Not counted: landings without marketing consent, without an LCP, or
        # older than 28 days.
        + group("perf", 100, 0, fast=False, channel="search", campaign=None, revenue="20",
                consent="performance")
        + group("nolcp", 50, 50, fast=True, channel="email", campaign="black-friday",
                revenue="80", lcp=None)
        + group("old", 100, 100, fast=True, channel="email", campaign="black-friday",
                revenue="80", day=TODAY - dt.timedelta(days=28)))
    await insert_beacons(conn, rows, random.Random(21))
    found = await conn.fetch("SELECT * FROM rum.speed_worth WHERE site = $1", SITE)
    return {(r["scope"], r["scope_value"]): r for r in found}


async def test_slow_landers_at_fast_landers_rate(worth: dict[tuple[str, str], asyncpg.Record]
                                                ) -> None:
    assert set(worth) == {("site", "(all)"), ("channel", "email"), ("channel", "search"),
                          ("channel", "social"), ("campaign", "black-friday"),
                          ("campaign", "(none)"), ("campaign", "tiny")}
    site = worth[("site", "(all)")]
    assert (site["first_day"], site["last_day"]) == (TODAY - dt.timedelta(days=27), TODAY)
    # 520 fast sessions, 52 converted (10 %); 320 slow, 16 converted (5 %).
    assert (site["fast_sessions"], site["fast_conversions"]) == (520, 52)
    assert (site["slow_sessions"], site["slow_conversions"]) == (320, 16)
    assert (site["sessions"], site["conversions"]) == (840, 68)
    assert site["fast_conversion_rate"] == pytest.approx(10)
    assert site["slow_conversion_rate"] == pytest.approx(5)
    # 320 slow sessions converting at 10 % instead of 5 %: 16 more conversions.
    assert site["extra_conversions"] == pytest.approx(16)
    low, high = reference_newcombe(52, 520, 16, 320)
    assert site["extra_conversions_low"] == pytest.approx(320 * low / 100)
    assert site["extra_conversions_high"] == pytest.approx(320 * high / 100)
    assert 0 < site["extra_conversions_low"] < 16 < site["extra_conversions_high"]
    # Revenue: 40 conversions of 80 and 28 of 20 = 3760 over 68 conversions.
    assert site["revenue"] == Decimal(3760)
    assert site["revenue_per_conversion"] == pytest.approx(Decimal(3760) / 68)
    assert site["extra_revenue"] == pytest.approx(16 * 3760 / 68)
    assert site["extra_revenue_low"] == pytest.approx(320 * low / 100 * 3760 / 68)
    assert site["extra_revenue_high"] == pytest.approx(320 * high / 100 * 3760 / 68)
    assert site["too_small"] is False

    # Per channel and campaign, by the landing page's (the conversions happen
    # on a later, internal page view).
    for key, slow, extra, revenue in ((("channel", "email"), 200, 10, 80),
                                      (("campaign", "black-friday"), 200, 10, 80),
                                      (("channel", "search"), 100, 5, 20),
                                      (("campaign", "(none)"), 100, 5, 20)):
        row = worth[key]
        assert row["slow_sessions"] == slow and row["too_small"] is False, key
        assert row["extra_conversions"] == pytest.approx(extra), key
        assert row["extra_revenue"] == pytest.approx(extra * revenue), key
        low, high = reference_newcombe(row["fast_conversions"], row["fast_sessions"],
                                       row["slow_conversions"], slow)
        assert row["extra_conversions_low"] == pytest.approx(slow * low / 100), key
        assert row["extra_conversions_high"] == pytest.approx(slow * high / 100), key

    # 20 sessions a side: an estimate (1 conversion) but no interval.
    tiny = worth[("campaign", "tiny")]
    assert tiny["too_small"] is True and tiny["extra_conversions"] == pytest.approx(1)
    assert tiny["extra_conversions_low"] is None and tiny["extra_revenue_high"] is None


async def test_analyst_reads_it(conn: asyncpg.Connection,
                                worth: dict[tuple[str, str], asyncpg.Record]) -> None:
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE binome_analyst")
        assert await conn.fetchval(
            "SELECT extra_conversions FROM rum.speed_worth WHERE site = $1 AND scope = 'site'",
            SITE) == pytest.approx(16)


# --- read from rollups: the same as from every landing page view -------------------


@pytest.fixture
async def reference_conn(server_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with reference_connection(server_url, "reference_speed_worth.sql") as connection:
        yield connection


async def assert_same_as_reference(conn: asyncpg.Connection) -> int:
    """rum.speed_worth and reference.speed_worth hold the same rows, to the last
    bit of every value and bound; the number of rows."""
    for left, right in (("rum", "reference"), ("reference", "rum")):
        extra = await conn.fetch(f"SELECT * FROM {left}.speed_worth"
                                 f" EXCEPT ALL SELECT * FROM {right}.speed_worth")
        assert not extra, f"{left}.speed_worth has rows {right}.speed_worth has not: {extra[:3]}"
    count: int = await conn.fetchval("SELECT count(*) FROM rum.speed_worth")
    return count


async def test_rolled_up_dirty_snapshotted_and_live_days_read_as_every_landing(
        reference_conn: asyncpg.Connection) -> None:
    conn = reference_conn
    rng = random.Random(2109)
    # 31 days: the first three are out of the view's 28.
    start = TODAY - dt.timedelta(days=30)
    rows = synthetic_beacons(rng, "acme", start, days=31, sessions=2500, prefix="a")
    rows += synthetic_beacons(rng, "beta", TODAY - dt.timedelta(days=8), days=9, sessions=300,
                              prefix="b")
    await insert_beacons(conn, rows, rng)
    await conn.execute("ANALYZE")
    count = await assert_same_as_reference(conn)  # all live
    assert await conn.fetchval("SELECT count(*) FROM rum.speed_worth WHERE NOT too_small"
                               " AND extra_revenue_low IS NOT NULL") >= 3
    assert await conn.fetchval("SELECT count(DISTINCT site) FROM rum.speed_worth") == 2

    # Every day but the last two rolled up: read from binome.worth_days.
    report = await maintain(conn, retention_months=1000, rollup_lag_days=1, today=TODAY)
    assert report is not None and report.closed_through == TODAY - dt.timedelta(days=2)
    assert await conn.fetchval("SELECT count(DISTINCT day) FROM binome.worth_days"
                               " WHERE site = 'acme'") == 29
    assert await assert_same_as_reference(conn) == count

    # Sessions that go on (conversions on rolled-up days, after midnight) and
    # new ones: those days are dirty, computed live.
    late = continuation_beacons(random.Random(5), rows, 300) + synthetic_beacons(
        random.Random(6), "acme", TODAY - dt.timedelta(days=20), days=15, sessions=100,
        prefix="late")
    await insert_beacons(conn, late, rng)
    assert await conn.fetchval("SELECT count(*) FROM binome.rollup_dirty") >= 5
    count = await assert_same_as_reference(conn)

    # The live days snapshotted, then the snapshots stale (computed live again).
    report = await maintain(conn, retention_months=1000, rollup_lag_days=1, today=TODAY,
                            snapshot_page_views=1)
    # 2 sites x 2 live days, and a day ahead where a session went past midnight
    assert report is not None and len(report.snapshots) >= 4
    assert await conn.fetchval("SELECT count(*) FROM binome.rollup_dirty") == 0
    await assert_same_as_reference(conn)
    await conn.execute("UPDATE binome.live_snapshots SET valid_until = now() - interval '1 s'")
    await assert_same_as_reference(conn)

    # Everything closed, today and the days after it that sessions reached.
    last = await conn.fetchval("SELECT max(day) FROM binome.page_views")
    await maintain(conn, retention_months=1000, rollup_lag_days=0,
                   today=last + dt.timedelta(days=1))
    assert await conn.fetchval("SELECT count(*) FROM binome.live_page_views") == 0
    assert await assert_same_as_reference(conn) == count
