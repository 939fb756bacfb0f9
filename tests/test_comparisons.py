"""rum.comparisons (contract section 7, issue 21): each difference with its 95 %
interval and a verdict; the intervals calibrated by simulation against a numpy
reference of the same method (docs/analyst-guide.md, "How sure is a difference")."""

from __future__ import annotations

import datetime as dt
import json
import random
import time

from collections.abc import AsyncIterator

import asyncpg
import numpy as np
import pytest
from scipy import stats

from collector.maintenance import maintain
from tests.conftest import reference_connection
from tests.synthetic import _row, insert_beacons

Z = stats.norm.ppf(0.975)

# Days far from today, in sites of this module's own: removed after it.
pytestmark = pytest.mark.usefixtures("sites_removed_after")


def page_view(site: str, pv: str, day: dt.date, *, sid: str | None = None, release: str | None = None,
              variant: str | None = None, lcp: float | None = None, cls: float | None = 0.01,
              converted: bool = False, seconds: int = 0) -> tuple:
    received = dt.datetime.combine(day, dt.time(12), dt.UTC) + dt.timedelta(seconds=seconds)
    dims = {"page_type": "home"} | ({"ab_variant": variant} if variant else {})
    return _row(site=site, day=day, pv=pv, seq=0, sid=sid or "s" + pv, received_at=received,
                t0=received, consent="marketing", path="/", release=release,
                dims=json.dumps(dims), lcp=lcp, cls=cls,
                event_count=1 if converted else 0,
                events=json.dumps([{"name": "purchase"}]) if converted else None)


async def comparisons(conn: asyncpg.Connection, site: str) -> dict[tuple[str, str, str], asyncpg.Record]:
    rows = await conn.fetch("SELECT * FROM rum.comparisons WHERE site = $1", site)
    return {(r["kind"], r["subject"], r["metric"]): r for r in rows}


async def test_release_better_no_change_and_too_few(conn: asyncpg.Connection) -> None:
    """The issue's fixture: r2's LCPs are r1's minus 500 ms, 600 page views each;
    r3 has r2's values; r4 only 20 page views."""
    rng = np.random.default_rng(21)
    r1 = np.round(rng.lognormal(np.log(2400), 0.3, 600), 1)
    day = dt.date(2031, 3, 1)
    rows = []
    for release, values, offset in (("r1", r1, 0), ("r2", r1 - 500, 1000), ("r3", r1 - 500, 2000),
                                    ("r4", r1[:20], 3000)):
        rows += [page_view("cmp-rel", f"{release}-{i}", day, release=release, lcp=float(v),
                           seconds=offset + i) for i, v in enumerate(values)]
    await insert_beacons(conn, rows, random.Random(1))
    found = await comparisons(conn, "cmp-rel")

    r2 = found[("release", "r2", "lcp_p75")]
    assert r2["baseline"] == "r1" and r2["verdict"] == "better"
    assert r2["delta"] == pytest.approx(-500)
    assert r2["delta_low"] < -500 < r2["delta_high"]
    assert r2["delta_high"] - r2["delta_low"] < 400
    assert (r2["subject_n"], r2["baseline_n"]) == (600, 600)
    # The p75 is percentile_cont's.
    assert r2["subject_value"] == await conn.fetchval(
        "SELECT percentile_cont(0.75) WITHIN GROUP (ORDER BY lcp) FROM binome.page_views"
        " WHERE site = 'cmp-rel' AND release = 'r2'")
    r3 = found[("release", "r3", "lcp_p75")]
    assert (r3["baseline"], r3["verdict"], r3["delta"]) == ("r2", "no change", 0)
    assert r3["delta_low"] < 0 < r3["delta_high"]
    r4 = found[("release", "r4", "lcp_p75")]
    assert (r4["baseline"], r4["verdict"], r4["subject_n"]) == ("r3", "too few", 20)
    assert r4["delta_low"] is None and r4["delta_high"] is None
    assert ("release", "r1", "lcp_p75") not in found  # the first release has no baseline
    assert {m for (_, s, m) in found if s == "r2"} == {
        "lcp_p75", "inp_p75", "cls_p75", "cwv_good_pct", "conversion_rate"}
    # A grouped view: binome_analyst reads it (docs/privacy.md).
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE binome_analyst")
        assert await conn.fetchval(
            "SELECT verdict FROM rum.comparisons WHERE site = 'cmp-rel' AND subject = 'r2'"
            " AND metric = 'lcp_p75'") == "better"


async def test_ab_variant_against_a_and_conversion(conn: asyncpg.Connection) -> None:
    today = dt.datetime.now(dt.UTC).date()
    rows = []
    # A converts 10 %, B 30 % (400 sessions each), C the same as A; an old
    # variant D outside the 28 days is not compared.
    for variant, rate in (("A", 0.1), ("B", 0.3), ("C", 0.1), ("D", 0.9)):
        when = today - dt.timedelta(days=40 if variant == "D" else 3)
        rows += [page_view("cmp-ab", f"{variant}-{i}", when, variant=variant, lcp=2000.0 + i,
                           converted=i % 10 < rate * 10, seconds=i) for i in range(400)]
    rows += [page_view("cmp-ab", f"control-{i}", today - dt.timedelta(days=3), variant="control",
                       lcp=2000.0) for i in range(100)]
    await insert_beacons(conn, rows, random.Random(2))
    found = await comparisons(conn, "cmp-ab")
    assert {s for (k, s, _) in found if k == "ab_variant"} == {"B", "C", "control"}
    b = found[("ab_variant", "B", "conversion_rate")]
    assert (b["baseline"], b["verdict"], b["subject_n"]) == ("A", "better", 400)
    assert b["delta"] == pytest.approx(20)
    assert b["delta_low"] < 20 < b["delta_high"]
    c = found[("ab_variant", "C", "conversion_rate")]
    assert (c["baseline"], c["verdict"]) == ("A", "no change")


async def test_period_last_seven_complete_days_against_the_seven_before(
        conn: asyncpg.Connection) -> None:
    today = dt.datetime.now(dt.UTC).date()
    rows = []
    # The week before is slower by 1 s; today's page views (not complete) and
    # those of 15 days ago are outside both periods.
    for ago, lcp in ((1, 2000.0), (7, 2000.0), (8, 3000.0), (14, 3000.0), (0, 9000.0),
                     (15, 100.0)):
        rows += [page_view("cmp-period", f"d{ago}-{i}", today - dt.timedelta(days=ago),
                           lcp=lcp + i) for i in range(60)]
    await insert_beacons(conn, rows, random.Random(3))
    found = await comparisons(conn, "cmp-period")
    lcp = found[("period", str(today - dt.timedelta(days=7)), "lcp_p75")]
    assert lcp["baseline"] == str(today - dt.timedelta(days=14))
    assert (lcp["subject_n"], lcp["baseline_n"], lcp["verdict"]) == (120, 120, "better")
    assert lcp["delta"] == pytest.approx(-1000)


async def test_a_session_of_many_page_views_widens_the_interval(conn: asyncpg.Connection) -> None:
    """Page views of one session count as fewer independent ones (the design effect)."""
    day = dt.date(2031, 4, 1)
    rows = []
    for release, sessions, per in (("a1", 300, 1), ("a2", 300, 1), ("b1", 60, 5), ("b2", 60, 5)):
        base = 2000.0 if release.endswith("1") else 1900.0
        offset = {"a": 0, "b": 10000}[release[0]] + (0 if release.endswith("1") else 5000)
        rows += [page_view(f"cmp-deff-{release[0]}", f"{release}-{s}-{k}", day, release=release,
                           sid=f"{release}-{s}", lcp=base + s * per, seconds=offset + s)
                 for s in range(sessions) for k in range(per)]
    await insert_beacons(conn, rows, random.Random(4))
    one = (await comparisons(conn, "cmp-deff-a"))[("release", "a2", "lcp_p75")]
    five = (await comparisons(conn, "cmp-deff-b"))[("release", "b2", "lcp_p75")]
    assert one["subject_n"] == five["subject_n"] == 300
    # The same spread of values, but 60 sessions of 5 identical page views carry
    # what 60 page views carry: an interval about sqrt(5) times wider.
    assert five["delta_high"] - five["delta_low"] > 1.8 * (one["delta_high"] - one["delta_low"])


# --- read from rollups: the same as from every page view -------------------------


@pytest.fixture
async def reference_conn(server_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with reference_connection(server_url, "reference_comparisons.sql") as connection:
        yield connection


def mixed_page_views(rng: random.Random, site: str, days: list[dt.date], sessions: int,
                     prefix: str) -> list[tuple]:
    """Sessions of 1 to 4 page views within one UTC day (as the day-keyed sids
    are), of releases that follow each other, with and without ab_variant,
    consent, metrics and conversions."""
    rows = []
    for s in range(sessions):
        day = rng.choice(days)
        age = (days[-1] - day).days
        release = rng.choice([None, f"r{(20 - age) // 6}", f"r{(20 - age) // 6 + 1}"])
        variant = rng.choice([None, "A", "B", "B", "control"])
        consent = "marketing" if rng.random() < 0.6 else "performance"
        converts = rng.random() < 0.2
        start = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(
            seconds=rng.randrange(80000))
        pages = rng.choice([1, 1, 2, 3, 4])
        for k in range(pages):
            at = start + dt.timedelta(seconds=60 * k)
            dims = {"page_type": "home"} | ({"ab_variant": variant} if variant else {})
            converted = converts and k == pages - 1
            rows.append(_row(
                site=site, day=day, pv=f"{prefix}{s}-{k}", seq=0, sid=f"{prefix}{s}",
                received_at=at, t0=at, consent=consent, path="/", release=release,
                dims=json.dumps(dims),
                lcp=round(rng.lognormvariate(7.6, 0.5), 1) if rng.random() < 0.9 else None,
                inp=round(rng.lognormvariate(5, 0.7), 1) if rng.random() < 0.6 else None,
                cls=(0.0 if rng.random() < 0.4 else round(rng.expovariate(10), 4))
                if rng.random() < 0.9 else None,
                event_count=1 if converted else 0,
                events=json.dumps([{"name": "purchase"}]) if converted else None))
    return rows


async def assert_same_as_reference(conn: asyncpg.Connection) -> int:
    """rum.comparisons and reference.comparisons hold the same rows, to the last
    bit of every value and bound; the number of rows."""
    for left, right in (("rum", "reference"), ("reference", "rum")):
        extra = await conn.fetch(f"SELECT * FROM {left}.comparisons"
                                 f" EXCEPT ALL SELECT * FROM {right}.comparisons")
        assert not extra, f"{left}.comparisons has rows {right}.comparisons has not: {extra[:3]}"
    return await conn.fetchval("SELECT count(*) FROM rum.comparisons")


async def test_rolled_up_dirty_snapshotted_and_live_days_read_as_every_page_view(
        reference_conn: asyncpg.Connection) -> None:
    conn = reference_conn
    today = dt.datetime.now(dt.UTC).date()
    days = [today - dt.timedelta(days=n) for n in range(20, -1, -1)]
    rng = random.Random(2121)
    rows = mixed_page_views(rng, "fast", days, 2500, "a")
    rows += mixed_page_views(rng, "small", days[-9:], 300, "b")
    await insert_beacons(conn, rows, rng)
    await conn.execute("ANALYZE")
    count = await assert_same_as_reference(conn)  # all live
    kinds = {r["kind"] for r in await conn.fetch("SELECT DISTINCT kind FROM rum.comparisons")}
    assert kinds == {"release", "ab_variant", "period"}
    assert await conn.fetchval("SELECT count(*) FROM rum.comparisons WHERE verdict <> 'too few'"
                               " AND delta_low IS NOT NULL") > 20

    # Every day but the last two rolled up.
    report = await maintain(conn, retention_months=1000, rollup_lag_days=1, today=today)
    assert report is not None and report.closed_through == today - dt.timedelta(days=2)
    assert await conn.fetchval("SELECT count(DISTINCT day) FROM binome.comparison_days"
                               " WHERE site = 'fast'") == 19
    assert await assert_same_as_reference(conn) == count

    # New sessions on rolled-up days, in the two weeks and before: those days
    # are dirty, computed live.
    late = mixed_page_views(random.Random(7), "fast", [today - dt.timedelta(days=n)
                                                       for n in (3, 9, 16)], 60, "late")
    await insert_beacons(conn, late, rng)
    assert await conn.fetchval("SELECT count(*) FROM binome.rollup_dirty") == 3
    count = await assert_same_as_reference(conn)

    # The live days snapshotted, then the snapshots stale (computed live again).
    report = await maintain(conn, retention_months=1000, rollup_lag_days=1, today=today,
                            snapshot_page_views=1)
    assert report is not None and len(report.snapshots) == 4  # 2 sites x 2 live days
    assert await conn.fetchval("SELECT count(*) FROM binome.rollup_dirty") == 0
    await assert_same_as_reference(conn)
    await conn.execute("UPDATE binome.live_snapshots SET valid_until = now() - interval '1 s'")
    await assert_same_as_reference(conn)

    # Everything closed, today included.
    await maintain(conn, retention_months=1000, rollup_lag_days=0,
                   today=today + dt.timedelta(days=1))
    assert await conn.fetchval("SELECT count(*) FROM binome.live_page_views") == 0
    assert await assert_same_as_reference(conn) == count


# --- calibration by simulation ---------------------------------------------------

def reference_p75_interval(values: np.ndarray) -> tuple[float, float, float]:
    """numpy's p75 (linear, as percentile_cont) and the order statistics of
    ranks j, k (docs/analyst-guide.md), written independently of the SQL."""
    a = np.sort(values)
    n = len(a)
    spread = Z * np.sqrt(n * 0.75 * 0.25)
    j = int(min(max(np.floor(n * 0.75 - spread), 1), n))
    k = int(min(max(np.ceil(n * 0.75 + spread) + 1, 1), n))
    return float(np.percentile(a, 75)), float(a[j - 1]), float(a[k - 1])


def reference_newcombe(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    def wilson(x: int, n: int) -> tuple[float, float]:
        p = x / n
        centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
        half = Z / (1 + Z * Z / n) * np.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
        return centre - half, centre + half
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = wilson(x1, n1), wilson(x2, n2)
    d = p1 - p2
    return (100 * (d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)),
            100 * (d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)))


async def p75_draws(conn: asyncpg.Connection, subject: np.ndarray, baseline: np.ndarray
                    ) -> list[asyncpg.Record]:
    """The view's functions on each draw (row) of subject and baseline, in one call."""
    draws, n = subject.shape
    ids = np.repeat(np.arange(draws), n)
    return await conn.fetch("""
        WITH v AS (SELECT * FROM unnest($1::int[], $2::float8[], $3::float8[]) AS u(draw, s, b)),
        sides AS (SELECT draw, rum.p75_interval(array_agg(s)) AS s, rum.p75_interval(array_agg(b)) AS b
                  FROM v GROUP BY draw)
        SELECT draw, s, b, rum.p75_difference_interval(s, b) AS interval
        FROM sides ORDER BY draw""",
        ids.tolist(), subject.ravel().tolist(), baseline.ravel().tolist())


async def test_p75_interval_coverage_and_power(conn: asyncpg.Connection) -> None:
    started = time.monotonic()
    rng = np.random.default_rng(2002)
    sigma, median = 0.6, 2300.0
    true_p75 = stats.lognorm.ppf(0.75, sigma, scale=median)

    # Coverage: 1,000 draws of 500 page views a side, the subject 5 % faster.
    draws, n, shift = 1000, 500, 0.95
    subject = rng.lognormal(np.log(median * shift), sigma, (draws, n))
    baseline = rng.lognormal(np.log(median), sigma, (draws, n))
    rows = await p75_draws(conn, subject, baseline)
    truth = true_p75 * shift - true_p75
    covered = 0
    for row, s, b in zip(rows, subject, baseline):
        assert row["s"] == pytest.approx(reference_p75_interval(s), rel=1e-12)
        assert row["b"] == pytest.approx(reference_p75_interval(b), rel=1e-12)
        covered += row["interval"][0] <= truth <= row["interval"][1]
    coverage = covered / draws
    print(f"p75 difference: coverage {coverage:.3f}")
    assert 0.93 <= coverage <= 0.97

    # Equal distributions: the interval holds 0 (coverage of a null difference).
    rows = await p75_draws(conn, rng.lognormal(np.log(median), sigma, (400, n)),
                           rng.lognormal(np.log(median), sigma, (400, n)))
    null_coverage = np.mean([r["interval"][0] <= 0 <= r["interval"][1] for r in rows])
    print(f"p75 equal: coverage {null_coverage:.3f}")
    assert 0.93 <= null_coverage <= 0.98

    # Power: a real 10 % shift at 2,000 page views a side is found better.
    draws, n = 200, 2000
    rows = await p75_draws(conn, rng.lognormal(np.log(median * 0.9), sigma, (draws, n)),
                           rng.lognormal(np.log(median), sigma, (draws, n)))
    verdicts = await conn.fetch(
        "SELECT rum.verdict(2000, 2000, l, h, true) AS v FROM unnest($1::float8[], $2::float8[])"
        " AS u(l, h)", [r["interval"][0] for r in rows], [r["interval"][1] for r in rows])
    power = np.mean([r["v"] == "better" for r in verdicts])
    print(f"p75 10 % shift at 2,000 a side: better in {power:.3f}; {time.monotonic() - started:.1f} s")
    assert power >= 0.8


async def test_proportion_interval_coverage(conn: asyncpg.Connection) -> None:
    rng = np.random.default_rng(1998)
    draws = 2000
    for p1, p2, n1, n2 in ((0.03, 0.02, 2000, 2000), (0.70, 0.65, 300, 500)):
        x1 = rng.binomial(n1, p1, draws)
        x2 = rng.binomial(n2, p2, draws)
        rows = await conn.fetch(
            "SELECT rum.newcombe_interval(x1, $2, x2, $3) AS i"
            " FROM unnest($1::bigint[], $4::bigint[]) WITH ORDINALITY AS u(x1, x2, o) ORDER BY o",
            x1.tolist(), n1, n2, x2.tolist())
        truth = 100 * (p1 - p2)
        for row, a, b in zip(rows[:50], x1, x2):
            assert row["i"] == pytest.approx(reference_newcombe(int(a), n1, int(b), n2), rel=1e-9)
        coverage = np.mean([r["i"][0] <= truth <= r["i"][1] for r in rows])
        print(f"proportions {p1} vs {p2}, {n1}/{n2}: coverage {coverage:.3f}")
        assert 0.93 <= coverage <= 0.97


async def test_p75_interval_coverage_with_clustered_sessions(conn: asyncpg.Connection) -> None:
    """Page views of one session resemble each other (a session effect on the
    log of LCP, intra-session correlation 0.4, sessions of 1 to 6 page views):
    counted as independent, the intervals are too narrow; widened by the design
    effect (rum.design_effect, an upper bound) they cover at least 93 %."""
    rng = np.random.default_rng(1965)
    draws, sessions, median = 400, 400, 2300.0
    between, within = np.sqrt(0.4) * 0.6, np.sqrt(0.6) * 0.6
    true_p75 = median * np.exp(stats.norm.ppf(0.75) * 0.6)  # the page views' marginal

    def side() -> tuple[list[float], float]:
        sizes = rng.integers(1, 7, sessions)
        effect = np.repeat(rng.normal(0, between, sessions), sizes)
        values = median * np.exp(effect + rng.normal(0, within, sizes.sum()))
        return values.tolist(), float(sizes.sum()), float((sizes ** 2).sum())

    sides = [(side(), side()) for _ in range(draws)]
    rows = await conn.fetch("""
        SELECT rum.p75_difference_interval(rum.p75_interval(s, 1), rum.p75_interval(b, 1)) AS plain,
               rum.p75_difference_interval(
                   rum.p75_interval(s, rum.design_effect(sm::bigint, sm2::bigint)),
                   rum.p75_interval(b, rum.design_effect(bm::bigint, bm2::bigint))) AS widened
        FROM jsonb_to_recordset($1::jsonb)
             AS d(s float8[], sm float8, sm2 float8, b float8[], bm float8, bm2 float8, o int)
        ORDER BY o""",
        json.dumps([{"s": s[0], "sm": s[1], "sm2": s[2], "b": b[0], "bm": b[1], "bm2": b[2], "o": o}
                    for o, (s, b) in enumerate(sides)]))
    # Both sides from the same distribution: the true difference is 0.
    assert true_p75 > 0
    plain = np.mean([r["plain"][0] <= 0 <= r["plain"][1] for r in rows])
    widened = np.mean([r["widened"][0] <= 0 <= r["widened"][1] for r in rows])
    print(f"clustered sessions: coverage {plain:.3f} as independent, {widened:.3f} widened")
    assert plain < 0.93
    assert 0.93 <= widened <= 0.999
