"""The fold (sql/functions/30_fold.sql) stores exactly what the reference fold stores.

Two databases get the same batches of beacons in the same order: one folds
them with binome.refold_page_views as sql/functions/30_fold.sql defines it, the
other with the fold as first written (tests/reference_fold.sql). After
every phase, binome.page_views, binome.page_view_facts (every column, compared
as text, so that even a numeric's scale counts), rollup_state and rollup_dirty
(which days, how many times marked) must be identical, and so must what
binome.refold_page_views returns when called directly (as a deferred fold
would call it).

Phases: shuffled chunks with resends (tests/synthetic.py: sessions across
midnight, out-of-order seqs, consent changed mid-page, page views split across
days); batches built for corners (a page view's later beacons in later
batches, its sid or consent changing, a move to an earlier day, a revenue
equal in value but not in scale, a page view without sid or t0); days rolled
up, then late beacons that change them; and direct calls over wide day ranges,
for page views with and without beacons.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from collector import PROJECT_ROOT, db
from collector.row import COLUMNS
from collector.maintenance import maintain
from tests.conftest import _create_database, _drop_database
from tests.synthetic import Row, continuation_beacons, insert_beacons, synthetic_beacons

START = dt.date(2031, 5, 10)
REFERENCE_FOLD = (PROJECT_ROOT / "tests" / "reference_fold.sql").read_text()


@pytest.fixture(scope="module")
async def pair(server_url: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    urls = [await _create_database(server_url) for _ in range(2)]
    conns: list[asyncpg.Connection] = []
    try:
        for url in urls:
            conn = await db.connect(url)
            conns.append(conn)
            await db.migrate(conn, PROJECT_ROOT / "sql")
            await conn.execute("SET TIME ZONE 'UTC'")
        await conns[1].execute(REFERENCE_FOLD)
        yield conns[0], conns[1]
    finally:
        for conn in conns:
            await conn.close()
        for url in urls:
            await _drop_database(server_url, url)


def row(**values: Any) -> Row:
    defaults: dict[str, Any] = {c: None for c in COLUMNS}
    defaults["event_count"] = 0
    defaults.update(values)
    return tuple(defaults[c] for c in COLUMNS)


def at(day: dt.date, hour: float) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(hours=hour)


def corner_batches(day: dt.date, tag: str) -> list[list[Row]]:
    """Batches, in order, each written by one statement."""
    mk = "marketing"
    t0 = at(day, 10)
    base = {"site": "acme", "t0": t0, "consent": mk, "path": "/c", "browser": "Chrome",
            "os": "Android", "device_class": "mobile", "country": "FR", "release": "r1",
            "dims": json.dumps({"page_type": "home", "ab": "A"})}

    def b(pv: str, seq: int, **values: Any) -> Row:
        fields = {**base, "day": day, "pv": f"{tag}{pv}", "seq": seq, "sid": f"{tag}S1",
                  "received_at": t0 + dt.timedelta(seconds=5 + 60 * seq)}
        fields.update(values)
        return row(**fields)

    return [
        # A session of three page views, each beacon in its own batch, seqs out of order.
        [b("a", 0, lcp=1800.0, fcp=900.0, ttfb=300.0, channel="email", utm_source="nl",
           utm_campaign="spring", ref_origin="https://mail.example")],
        [b("b", 1, t0=t0 + dt.timedelta(minutes=3), cls=0.05, inp=120.0, channel="internal")],
        [b("a", 2, cls=0.2, inp=250.0), b("b", 0, t0=t0 + dt.timedelta(minutes=3),
                                           lcp=2600.0, channel="internal")],
        [b("a", 1, inp=90.0, release="r2", dims=json.dumps({"page_type": "product"}))],
        # Its later page view converts; then a beacon with a zero value changes
        # the revenue's scale only (49.9 -> 49.90).
        [b("c", 0, t0=t0 + dt.timedelta(minutes=9), lcp=1200.0, channel="internal")],
        [b("c", 1, t0=t0 + dt.timedelta(minutes=9), event_count=1, revenue=Decimal("49.9"),
           events=json.dumps([{"name": "purchase", "value": 49.9}]))],
        [b("c", 2, t0=t0 + dt.timedelta(minutes=9), event_count=1, revenue=Decimal("0.00"),
           events=json.dumps([{"name": "purchase", "value": 0}]))],
        # Consent withdrawn on the landing page: the session's channel changes.
        [b("a", 3, consent="performance")],
        # A page view whose sid changes between beacons: both sessions change.
        [b("d", 0, sid=f"{tag}S2", lcp=3000.0, t0=t0 + dt.timedelta(minutes=1))],
        [b("d", 1, lcp=3100.0, t0=t0 + dt.timedelta(minutes=1))],
        # No sid, no t0: its own session, landing by receive time.
        [b("e", 0, sid=None, t0=None, lcp=500.0, consent="performance")],
        [b("e", 1, sid=None, t0=None, cls=0.0)],
        # A page view stored under a later day first, then its earlier beacon.
        [b("f", 1, day=day + dt.timedelta(days=2), received_at=at(day, 60), cls=0.3,
           t0=None, sid=f"{tag}S3")],
        [b("f", 0, t0=None, sid=f"{tag}S3", lcp=2100.0)],
        # A page view of the first session starting the next day, and one equal
        # in t0 to the landing page view but received before it: it lands.
        [b("g", 0, day=day + dt.timedelta(days=1), t0=at(day, 25), lcp=900.0),
         b("h", 0, received_at=t0 + dt.timedelta(seconds=2), lcp=1000.0,
           consent="performance")],
        # Without t0, a session's order is the receive order: a page view's
        # first beacon, late, received before the other page view's makes it
        # the landing page view.
        [b("i", 1, sid=f"{tag}S4", t0=None, received_at=t0 + dt.timedelta(minutes=5),
           channel="search")],
        [b("j", 0, sid=f"{tag}S4", t0=None, received_at=t0 + dt.timedelta(minutes=3),
           channel="social")],
        [b("i", 0, sid=f"{tag}S4", t0=None, received_at=t0 + dt.timedelta(minutes=1),
           channel="search", lcp=700.0)],
        # A page view's t0 moves before the landing page view's: it lands.
        [b("m", 0, sid=f"{tag}S5", channel="direct"),
         b("n", 0, sid=f"{tag}S5", t0=t0 + dt.timedelta(minutes=5), channel="social")],
        [b("n", 1, sid=f"{tag}S5", t0=t0 - dt.timedelta(minutes=5), channel="social")],
        # A later page view converts; in one batch, a beacon with a zero value
        # changes its revenue's scale only (49.9 -> 49.90) and another page
        # view's t0 moves without reordering the session: the session is
        # recomputed and comes out the same, so its stored revenue keeps its scale.
        [b("p", 0, sid=f"{tag}S6", channel="search"),
         b("r", 0, sid=f"{tag}S6", t0=t0 + dt.timedelta(minutes=5)),
         b("q", 0, sid=f"{tag}S6", t0=t0 + dt.timedelta(minutes=9))],
        [b("q", 1, sid=f"{tag}S6", t0=t0 + dt.timedelta(minutes=9), event_count=1,
           revenue=Decimal("49.9"), events=json.dumps([{"name": "purchase", "value": 49.9}]))],
        [b("q", 2, sid=f"{tag}S6", t0=t0 + dt.timedelta(minutes=9), event_count=1,
           revenue=Decimal("0.00"), events=json.dumps([{"name": "purchase", "value": 0}])),
         b("r", 1, sid=f"{tag}S6", t0=t0 + dt.timedelta(minutes=4))],
        # A resend of a stored beacon (refused, folds nothing) beside a new one.
        [b("g", 0, day=day + dt.timedelta(days=1), t0=at(day, 25), lcp=900.0),
         b("g", 1, day=day + dt.timedelta(days=1), t0=at(day, 25), inp=40.0)],
    ]


async def write_batches(conn: asyncpg.Connection, batches: list[list[Row]]) -> None:
    day_col = COLUMNS.index("day")
    for day in sorted({r[day_col] for batch in batches for r in batch}):
        await conn.execute("SELECT binome.ensure_beacon_partition($1)", day)
    for batch in batches:
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS corner_in"
                               " (LIKE binome.beacons) ON COMMIT DROP")
            await conn.copy_records_to_table("corner_in", records=batch, columns=COLUMNS)
            await conn.execute("INSERT INTO binome.beacons SELECT * FROM corner_in"
                               " ON CONFLICT DO NOTHING")


async def state(conn: asyncpg.Connection) -> dict[str, list[str]]:
    queries = {
        "page_views": "SELECT p::text FROM binome.page_views p ORDER BY site, pv",
        "page_view_facts": "SELECT f::text FROM binome.page_view_facts f ORDER BY site, day, pv",
        "rollup_state": "SELECT s::text FROM binome.rollup_state s ORDER BY site",
        "rollup_dirty": "SELECT (site, day, version)::text FROM binome.rollup_dirty"
                        " ORDER BY site, day",
    }
    return {name: [r[0] for r in await conn.fetch(sql)] for name, sql in queries.items()}


async def assert_same(new: asyncpg.Connection, old: asyncpg.Connection) -> None:
    got, want = await state(new), await state(old)
    for table in want:
        assert len(got[table]) == len(want[table]), table
        differ = [(g, w) for g, w in zip(got[table], want[table], strict=True) if g != w]
        assert not differ, f"{table}: fold | reference:\n" + "\n".join(
            f"{g}\n{w}" for g, w in differ[:3])
    assert got["page_views"] and got["page_view_facts"]


async def both(pair: tuple[asyncpg.Connection, asyncpg.Connection], action: Any) -> list[Any]:
    return [await action(conn) for conn in pair]


async def test_the_fold_stores_what_the_reference_fold_stores(
    pair: tuple[asyncpg.Connection, asyncpg.Connection]
) -> None:
    new, old = pair
    assert "count(*) AS beacons" in await old.fetchval(
        "SELECT prosrc FROM pg_proc WHERE oid = 'binome.refold_page_views'::regproc")
    rows = synthetic_beacons(random.Random(11), "acme", START, days=4, sessions=400, prefix="a")
    rows += synthetic_beacons(random.Random(12), "beta", START, days=2, sessions=80, prefix="b")
    await both(pair, lambda c: insert_beacons(c, rows, random.Random(13)))
    await both(pair, lambda c: write_batches(c, corner_batches(START + dt.timedelta(days=1),
                                                               "k1")))
    await assert_same(new, old)

    # Days rolled up, then late beacons that change them.
    reports = await both(pair, lambda c: maintain(c, retention_months=1000, rollup_lag_days=1,
                                                  today=START + dt.timedelta(days=4)))
    assert all(r is not None and r.rolled_up for r in reports)
    await assert_same(new, old)
    late = continuation_beacons(random.Random(14), rows, 150) + synthetic_beacons(
        random.Random(15), "acme", START, days=3, sessions=50, prefix="late")
    await both(pair, lambda c: insert_beacons(c, late, random.Random(16), max_chunk=60))
    await both(pair, lambda c: write_batches(c, corner_batches(START, "k2")))
    assert await new.fetchval("SELECT count(*) FROM binome.rollup_dirty") >= 2
    await assert_same(new, old)

    # Called directly, as a deferred fold would: wide day ranges, a page view
    # listed twice, one without beacons.
    call = ("SELECT binome.refold_page_views($1::text[], $2::text[], $3::date[], $4::date[])")
    pvs = [r["pv"] for r in await new.fetch(
        "SELECT pv FROM binome.page_views WHERE site = 'acme' ORDER BY pv LIMIT 40")]
    args = (["acme"] * (len(pvs) + 2), pvs + [pvs[0], "nosuchpv"],
            [START - dt.timedelta(days=1)] * (len(pvs) + 2),
            [START + dt.timedelta(days=5)] * (len(pvs) + 2))
    folded = await both(pair, lambda c: c.fetchval(call, *args))
    assert folded[0] == folded[1] == len(pvs)
    await assert_same(new, old)
    assert await both(pair, lambda c: c.fetchval(
        "SELECT binome.refold_days($1, $2)", START, START + dt.timedelta(days=4))) == \
        [await old.fetchval("SELECT count(DISTINCT (site, pv)) FROM binome.beacons"
                            " WHERE day BETWEEN $1 AND $2", START, START + dt.timedelta(days=4))] * 2
    await assert_same(new, old)

    await both(pair, lambda c: maintain(c, retention_months=1000, rollup_lag_days=0,
                                        today=START + dt.timedelta(days=10)))
    await assert_same(new, old)
