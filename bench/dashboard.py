"""How fast the shared scorecard loads over 30 days of one million page views.

    python bench/dashboard.py [--page-views 1000000] [--days 30] [--keep]

Creates a fresh database on the server in BINOME_DATABASE_URL (default: the
local PostgreSQL), migrates it, COPYs synthetic beacons straight into
binome.beacons (one or two beacons per page view, as the snippet sends them:
the views fold them into page views), then starts a collector and times
GET /dashboard, its assets and GET /dashboard/data, which is what the page
waits for. The database is dropped at the end unless --keep is given.
Results go to bench/results/dashboard.json. --what-if-materialized also times
the endpoint's statements over copies of the views in plain tables: what the
page would cost once the views read rollups instead of raw beacons.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import random
import secrets
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector import db  # noqa: E402
from collector.enrich import COLUMNS  # noqa: E402
from tests.conftest import Collector  # noqa: E402

SITE = "bench"
TOKEN = "bench-token"
CHANNELS = [("search", 0.35), ("direct", 0.2), ("social", 0.12), ("email", 0.1),
            ("paid", 0.13), ("referral", 0.06), ("internal", 0.04)]
CAMPAIGNS = ["(none)"] * 8 + [f"campaign-{i:02d}" for i in range(30)]
DEVICES = [("mobile", 0.62), ("desktop", 0.33), ("tablet", 0.05)]
COUNTRIES = [("FR", 0.7), ("BE", 0.1), ("CH", 0.07), ("CA", 0.05), ("US", 0.04), ("DE", 0.04)]
PATHS = ["/", "/c/shoes", "/c/bags", "/p/42", "/p/43", "/p/77", "/cart", "/checkout"]


def _pick(rng: random.Random, choices: list[tuple[str, float]]) -> str:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def beacon_rows(page_views: int, days: int, seed: int = 8) -> list[tuple[Any, ...]]:
    """Rows of binome.beacons in COLUMNS order: sessions of 1-6 page views."""
    rng = random.Random(seed)
    today = dt.datetime.now(dt.UTC).date()
    first_day = today - dt.timedelta(days=days - 1)
    rows: list[tuple[Any, ...]] = []
    made = 0
    columns = {name: i for i, name in enumerate(COLUMNS)}
    while made < page_views:
        day = first_day + dt.timedelta(days=rng.randrange(days))
        start = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(
            seconds=rng.uniform(0, 86_000))
        sid = secrets.token_urlsafe(12)
        consent = "marketing" if rng.random() < 0.68 else "performance"
        channel = _pick(rng, CHANNELS)
        campaign = rng.choice(CAMPAIGNS) if channel in ("email", "paid", "social") else None
        device_class = _pick(rng, DEVICES)
        country = _pick(rng, COUNTRIES)
        # A release a week, the third one slower.
        release = f"2026.{(day - first_day).days // 7 + 1}"
        slow = 1.35 if release.endswith(".3") else 1.0
        slow *= 1.4 if device_class == "mobile" else 1.0
        session_length = min(1 + int(rng.expovariate(0.6)), 6)
        lcp0 = rng.lognormvariate(math.log(1700 * slow), 0.55)
        converts = rng.random() < 0.09 / (1 + max(0.0, lcp0 - 2000) / 2500)
        for position in range(session_length):
            pv = secrets.token_urlsafe(12)
            t0 = start + dt.timedelta(seconds=position * rng.uniform(5, 90))
            lcp = lcp0 if position == 0 else rng.lognormvariate(math.log(1500 * slow), 0.5)
            inp = rng.lognormvariate(math.log(110 * slow), 0.7) if rng.random() < 0.7 else None
            cls = round(rng.expovariate(12), 4)
            fcp = lcp * rng.uniform(0.45, 0.9)
            ttfb = fcp * rng.uniform(0.2, 0.5)
            last = position == session_length - 1
            bought = consent == "marketing" and converts and last
            revenue = Decimal(rng.randrange(1500, 25000)) / 100 if bought else None
            record: list[Any] = [None] * len(COLUMNS)
            values = {
                "site": SITE, "day": t0.date(), "pv": pv, "seq": 0, "sid": sid,
                "received_at": t0 + dt.timedelta(seconds=3), "t0": t0, "consent": consent,
                "path": PATHS[0] if position == 0 else rng.choice(PATHS[1:]),
                "channel": channel if consent == "marketing" else None,
                "utm_campaign": campaign if consent == "marketing" else None,
                "utm_source": channel if consent == "marketing" and campaign else None,
                "release": release, "device_class": device_class, "browser": "Chrome",
                "os": "Android" if device_class == "mobile" else "Windows", "country": country,
                "lcp": lcp, "fcp": fcp, "ttfb": ttfb, "cls": cls, "event_count": 0,
                "dims": '{"page_type": "product"}',
            }
            if inp is not None and rng.random() < 0.5:
                # Most page views send a second beacon when hidden again: INP and the
                # final CLS arrive with seq 1.
                values.update(inp=None)
                for k, v in values.items():
                    record[columns[k]] = v
                rows.append(tuple(record))
                record = [None] * len(COLUMNS)
                values.update(seq=1, inp=inp, lcp=None, fcp=None, ttfb=None,
                              received_at=values["received_at"] + dt.timedelta(seconds=40))
            else:
                values.update(inp=inp)
            if bought:
                values.update(event_count=1, revenue=revenue,
                              events=json.dumps([{"name": "purchase", "value": float(revenue),
                                                  "currency": "EUR"}]))
            for k, v in values.items():
                record[columns[k]] = v
            rows.append(tuple(record))
            made += 1
            if made >= page_views:
                break
    return rows


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def load(url: str, page_views: int, days: int) -> int:
    conn = await db.connect(url)
    try:
        await db.migrate(conn, ROOT / "sql")
        await db.add_site(conn, SITE, [])
        started = time.perf_counter()
        rows = beacon_rows(page_views, days)
        print(f"generated {len(rows):,} beacons for {page_views:,} page views "
              f"in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        for day in sorted({r[1] for r in rows}):
            await conn.execute("SELECT binome.ensure_beacon_partition($1)", day)
        await conn.copy_records_to_table("beacons", schema_name="binome", records=rows,
                                         columns=COLUMNS)
        await conn.execute("ANALYZE binome.beacons")
        print(f"COPY + ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)
        return len(rows)
    finally:
        await conn.close()


def time_dashboard(base: str, days: int) -> dict[str, Any]:
    """The page and its assets, then GET /dashboard/data: first computed, then
    again within the collector's cache (collector/dashboard.py: CACHE_SECONDS)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    today = dt.datetime.now(dt.UTC).date()
    period = {"site": SITE, "from": str(today - dt.timedelta(days=days - 1)), "to": str(today)}
    with httpx.Client(base_url=base, headers=auth, timeout=600) as client:
        started = time.perf_counter()
        page = client.get("/dashboard")
        assets = [client.get(f"/dashboard/assets/{name}")
                  for name in ("dashboard.js", "dashboard.css")]
        static_seconds = time.perf_counter() - started
        assert page.status_code == 200 and all(a.status_code == 200 for a in assets)
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            response = client.get("/dashboard/data", params=period)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text[:500]
        data = response.json()
    return {
        "page_and_assets_seconds": round(static_seconds, 3),
        "data_seconds": round(timings[0], 3),
        "data_cached_seconds": round(timings[1], 3),
        "page_views_in_period": data["period"]["current"]["page_views"],
    }


async def time_queries(url: str, days: int, schema: str = "rum") -> dict[str, float]:
    """Each of the endpoint's statements alone, reading `schema` for the rum views."""
    from collector import dashboard

    today = dt.datetime.now(dt.UTC).date()
    filters = dashboard.Filters(SITE, today - dt.timedelta(days=days - 1), today)
    statements = {
        "period": (dashboard._PERIOD_QUERY, SITE, filters.previous_first_day,
                   filters.first_day, filters.last_day, None, None),
        "releases": (dashboard._RELEASES_QUERY, SITE, filters.first_day, filters.last_day),
        "speed": (dashboard._SPEED_QUERY, SITE),
    }
    conn = await asyncpg.connect(url)
    timings = {}
    try:
        await conn.execute("SET statement_timeout = 0")
        for name, (sql, *args) in statements.items():
            started = time.perf_counter()
            await conn.fetch(sql.replace("rum.", f"{schema}."), *args)
            timings[name] = round(time.perf_counter() - started, 3)
    finally:
        await conn.close()
    return timings


async def materialize(url: str) -> float:
    """What-if: the views the dashboard reads copied into plain indexed tables of
    schema `what_if`, roughly what rollups (issue 4) would give it to read."""
    conn = await asyncpg.connect(url)
    started = time.perf_counter()
    try:
        await conn.execute("SET statement_timeout = 0")
        await conn.execute("CREATE SCHEMA what_if")
        for view in ("page_views_enriched", "sessions", "release_comparison",
                     "perf_vs_conversion", "sites", "ingest_health"):
            await conn.execute(f"CREATE TABLE what_if.{view} AS SELECT * FROM rum.{view}")
        await conn.execute("CREATE INDEX ON what_if.page_views_enriched (site, day)")
        await conn.execute("CREATE INDEX ON what_if.sessions (site, sid)")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--page-views", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--what-if-materialized", action="store_true",
                        help="also time the statements over the views copied into tables")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    server = os.environ.get("BINOME_DATABASE_URL",
                            "postgresql://postgres@127.0.0.1:5432/postgres")
    name = "binome_bench_dashboard_" + secrets.token_hex(4)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = _with_database(server, name)
    collector = None
    try:
        beacons = asyncio.run(load(url, args.page_views, args.days))
        results_dir = ROOT / "bench" / "results"
        results_dir.mkdir(parents=True, exist_ok=True)
        collector = Collector(url, results_dir / "dashboard-collector.log",
                              dashboard_token=TOKEN)
        result: dict[str, Any] = {
            "page_views": args.page_views, "beacons": beacons, "days": args.days,
            **time_dashboard(collector.url, args.days),
            "statements_seconds": asyncio.run(time_queries(url, args.days)),
        }
        collector.stop()
        collector = None
        if args.what_if_materialized:
            result["what_if_copy_seconds"] = asyncio.run(materialize(url))
            result["what_if_statements_seconds"] = asyncio.run(
                time_queries(url, args.days, "what_if"))
        (results_dir / "dashboard.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        if collector is not None:
            collector.stop()
        if args.keep:
            print(f"kept database {url}")
        else:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
