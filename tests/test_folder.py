"""The deferred fold (sql/functions/30_fold.sql, collector/folder.py).

The collector's writer only queues the page views it stores; its folder folds
them right after, `binome maintain` folds what a stopped collector left. What
is folded must be what folding inside each write stores, whatever the sets
and their order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from collector import PROJECT_ROOT, db
from collector.row import COLUMNS
from collector.folder import FOLDER_LOCK, PageViewFolder, fold_queue
from collector.maintenance import maintain
from tests.conftest import _create_database, _drop_database, folded, make_beacon, wait_for
from tests.synthetic import continuation_beacons, insert_beacons, synthetic_beacons
from tests.test_abuse import metric

START = dt.date(2031, 6, 3)
SITE, PV, DAY = COLUMNS.index("site"), COLUMNS.index("pv"), COLUMNS.index("day")


@pytest.fixture
async def pair(server_url: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """Two databases: the first defers its folds, the second folds inside each insert."""
    urls = [await _create_database(server_url) for _ in range(2)]
    conns: list[asyncpg.Connection] = []
    try:
        for url in urls:
            conn = await db.connect(url)
            conns.append(conn)
            await db.migrate(conn, PROJECT_ROOT / "sql")
            await conn.execute("SET TIME ZONE 'UTC'")
        await conns[0].execute("SET binome.defer_fold = on")
        yield conns[0], conns[1]
    finally:
        for conn in conns:
            await conn.close()
        for url in urls:
            await _drop_database(server_url, url)


async def state(conn: asyncpg.Connection) -> dict[str, list[str]]:
    queries = {
        "page_views": "SELECT p::text FROM binome.page_views p ORDER BY site, pv",
        "page_view_facts": "SELECT f::text FROM binome.page_view_facts f ORDER BY site, day, pv",
        "rollup_state": "SELECT s::text FROM binome.rollup_state s ORDER BY site",
        # How often a day was marked depends on the sets, not which days are.
        "rollup_dirty": "SELECT (site, day)::text FROM binome.rollup_dirty ORDER BY site, day",
        "scorecard_daily": "SELECT s::text FROM rum.scorecard_daily s"
                           " ORDER BY day, site, channel, utm_campaign, device_class, country",
    }
    return {name: [r[0] for r in await conn.fetch(sql)] for name, sql in queries.items()}


async def test_a_deferred_fold_stores_what_folding_each_insert_stores(
    pair: tuple[asyncpg.Connection, asyncpg.Connection]
) -> None:
    deferred, inline = pair
    rng = random.Random(7)
    first = (synthetic_beacons(rng, "shop", START, 3, 300)
             + synthetic_beacons(rng, "blog", START, 3, 80))
    later = continuation_beacons(rng, first, 150)
    for rows in (first, later):
        for conn in pair:
            await insert_beacons(conn, rows, random.Random(len(rows)))
        # Queued, one row per page view however many of its beacons came in,
        # with the span of days they were stored on (the fold reads the days
        # of its beacons folded before itself); nothing folded yet.
        queued = {(r["site"], r["pv"]): (r["first_day"], r["last_day"]) for r in await
                  deferred.fetch("SELECT site, pv, first_day, last_day FROM binome.fold_queue")}
        spans: dict[tuple[str, str], tuple[dt.date, dt.date]] = {}
        for r in rows:
            lo, hi = spans.get((r[SITE], r[PV]), (r[DAY], r[DAY]))
            spans[r[SITE], r[PV]] = (min(lo, r[DAY]), max(hi, r[DAY]))
        assert queued == spans
        if rows is first:
            assert await deferred.fetchval("SELECT count(*) FROM binome.page_views") == 0
        # Small sets: a session's page views are folded in different ones.
        assert await fold_queue(deferred, limit=37) == len(queued)
        assert await deferred.fetchval("SELECT count(*) FROM binome.fold_queue") == 0
        got, want = await state(deferred), await state(inline)
        assert want["page_views"] and want["scorecard_daily"]
        for table in want:
            assert got[table] == want[table], table


async def test_binome_maintain_folds_what_a_stopped_collector_left(
    pair: tuple[asyncpg.Connection, asyncpg.Connection]
) -> None:
    deferred, inline = pair
    rng = random.Random(11)
    rows = synthetic_beacons(rng, "shop", START, 2, 200)
    for conn in pair:
        await insert_beacons(conn, rows, random.Random(3))
    queued = await deferred.fetchval("SELECT count(*) FROM binome.fold_queue")
    assert queued == len({r[PV] for r in rows})
    today = START + dt.timedelta(days=3)
    reports = [await maintain(conn, retention_months=25, rollup_lag_days=0, today=today)
               for conn in pair]
    assert reports[0] is not None and reports[1] is not None
    assert reports[0].folded == queued and reports[1].folded == 0
    # The closed days were rolled up from every page view, not from those
    # folded so far: the same rollups as where each insert folded.
    assert reports[0].rolled_up == reports[1].rolled_up != []
    for table in ("scorecard_days", "release_days", "landing_days"):
        sql = f"SELECT t::text FROM binome.{table} t ORDER BY 1"
        assert [r[0] for r in await deferred.fetch(sql)] == [r[0] for r in await inline.fetch(sql)]


async def queue_sizes(conn: asyncpg.Connection, seconds: float) -> list[int]:
    """The fold queue's length, sampled every 50 ms for `seconds`."""
    sizes = []
    for _ in range(int(seconds / 0.05)):
        sizes.append(await conn.fetchval("SELECT count(*) FROM binome.fold_queue"))
        await asyncio.sleep(0.05)
    return sizes


@pytest.fixture
async def queued_database(server_url: str) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A database of its own whose inserts only queue their page views."""
    url = await _create_database(server_url)
    conn = await db.connect(url)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        await conn.execute("SET binome.defer_fold = on")
        yield url, conn
    finally:
        await conn.close()
        await _drop_database(server_url, url)


async def keep_writing(folder: PageViewFolder) -> None:
    """What the writer does after each batch it stores, every millisecond: the
    folder pauses after a fold only if a write came while it folded, and on a
    fast machine a fold of 100 page views can end between two batches 20 ms apart."""
    while True:
        folder.notify()
        await asyncio.sleep(0.001)


@pytest.mark.parametrize("case", ["writing", "behind", "idle"])
async def test_the_folder_pauses_between_folds_while_the_writer_writes(
    case: str, queued_database: tuple[str, asyncpg.Connection]
) -> None:
    url, deferred = queued_database
    rows = synthetic_beacons(random.Random(5), "shop", START, 2, 600)
    await insert_beacons(deferred, rows, random.Random(5))
    queued = await deferred.fetchval("SELECT count(*) FROM binome.fold_queue")
    if case == "behind":  # queued an hour ago: further behind than max_lag
        await deferred.execute("UPDATE binome.fold_queue SET queued_at = now() - interval '1 hour'")
    # A share of 0.1 %: after a fold of at least a few milliseconds, a pause of seconds.
    folder = PageViewFolder(url, max_lag=600, share=0.001, set_size=100)
    await folder.start()
    writer = asyncio.create_task(keep_writing(folder)) if case != "idle" else None
    try:
        folder.notify()
        sizes = await queue_sizes(deferred, 3.0)
        if case == "writing":
            # One set, then the pause its fold earned: the rest is still queued.
            assert sizes[-1] == queued - 100
        else:
            # Back to back: the whole queue, set after set, within the three seconds.
            assert sizes[-1] == 0 and len(set(sizes)) > 2
    finally:
        if writer is not None:
            writer.cancel()
        await folder.stop()  # stopping ends the pause and folds the rest
    assert await deferred.fetchval("SELECT count(*) FROM binome.fold_queue") == 0


async def test_one_folder_folds_for_every_collector_of_a_database(
    queued_database: tuple[str, asyncpg.Connection]
) -> None:
    url, deferred = queued_database
    empty = "SELECT NOT EXISTS (SELECT 1 FROM binome.fold_queue)"

    async def queue(seed: int) -> int:
        rows = synthetic_beacons(random.Random(seed), "shop", START, 1, 40, prefix=f"p{seed}")
        await insert_beacons(deferred, rows, random.Random(seed))
        return len({r[PV] for r in rows})

    first, second = (PageViewFolder(url, set_size=10) for _ in range(2))
    try:
        queued = await queue(1)
        await first.start()
        first.notify()
        assert await wait_for(deferred, empty)
        await second.start()
        queued += await queue(2)
        second.notify()
        first.notify()
        assert await wait_for(deferred, empty)
        # The first holds the folder lock: it folded both collectors' page views.
        assert (first.folded, second.folded) == (queued, 0)
        # Its connection says what it is, for whoever reads pg_stat_activity.
        assert await deferred.fetchval(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND (l.classid::bigint << 32) + l.objid::bigint = $1", FOLDER_LOCK) == "binome-folder"
        # Once it stops, the second takes over (it asks every IDLE_S).
        await first.stop()
        taken_over = await queue(3)
        second.notify()
        assert await wait_for(deferred, empty)
        assert second.folded == taken_over
    finally:
        await first.stop()
        await second.stop()


@pytest.fixture
async def demo_database(fresh_database: str) -> str:
    """A migrated database of its own with the demo site: counts are exact."""
    conn = await db.connect(fresh_database)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        await db.add_site(conn, "demo", [])
    finally:
        await conn.close()
    return fresh_database


def post(url: str, beacons: list[dict[str, Any]]) -> None:
    with httpx.Client() as client:
        for beacon in beacons:
            assert client.post(url + "/beacon", json=beacon).status_code == 204


@pytest.mark.parametrize("deferred", [True, False])
async def test_the_collector_folds_behind_its_writes_or_inside_them(
    deferred: bool, demo_database: str, start_collector: Any
) -> None:
    collector = start_collector(demo_database, deferred_fold=deferred, batch_max_ms=20,
                                rate_limit_per_minute=0, store_automated=True)
    beacons = [make_beacon(site="demo") for _ in range(12)]
    beacons += [make_beacon(site="demo", pv=b["pv"], sid=b.get("sid"), seq=1) for b in beacons[:5]]
    post(collector.url, beacons)
    db_conn = await db.connect(demo_database)
    try:
        assert await wait_for(db_conn, "SELECT count(*) FROM binome.beacons",
                              expect=len(beacons)) == len(beacons)
        await folded(db_conn)
        assert await wait_for(db_conn, "SELECT count(*) FROM rum.page_views_enriched",
                              expect=12) == 12
        # Counted by the folder only when it did the folding: each page view
        # once, or twice when its seq 1 came in after its seq 0 was folded.
        folds = metric(collector.url, "binome_page_views_folded_total")
        assert (12 <= folds <= len(beacons)) if deferred else folds == 0
        assert metric(collector.url, "binome_fold_lag_seconds") == 0
    finally:
        await db_conn.close()


async def test_a_stopping_collector_folds_its_last_writes(
    demo_database: str, start_collector: Any
) -> None:
    # Batches wait up to 5 s: the beacons are still in the writer's queue at
    # SIGTERM, written and folded on the way out.
    collector = start_collector(demo_database, batch_max_ms=5000, rate_limit_per_minute=0,
                                store_automated=True)
    post(collector.url, [make_beacon(site="demo") for _ in range(20)])
    collector.stop()
    assert "collector stopped" in collector.log_path.read_text()
    conn = await db.connect(demo_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM binome.beacons") == 20
        assert await conn.fetchval("SELECT count(*) FROM binome.fold_queue") == 0
        assert await conn.fetchval("SELECT count(*) FROM rum.page_views_enriched") == 20
    finally:
        await conn.close()
