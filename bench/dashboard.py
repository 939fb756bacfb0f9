"""How fast the shared scorecard loads over 30 days of one million page views.

    python bench/dashboard.py [--page-views 1000000] [--days 30] [--period-days DAYS]
                              [--rounds 5] [--rollup-lag-days 1] [--keep | --database NAME]

Creates a fresh database on the server in BINOME_DATABASE_URL (default: the
local PostgreSQL), migrates it, COPYs synthetic beacons straight into
binome.beacons (one or two beacons per page view, as the snippet sends them:
they are folded into page views as they are stored), then runs `binome
maintain` as a running collector does every few minutes: every day but the
last --rollup-lag-days and today is rolled up, those are computed live. Then it
starts a collector and times GET /dashboard, its assets and GET
/dashboard/data, which is what the page waits for: --rounds first loads (each
after the collector's cache of the figures has expired, so each computes them;
median and max reported), then one load served from that cache, then each of
the endpoint's statements alone. The period is the last --period-days days
(default: all --days; with --days 60 --page-views 2000000 --period-days 30 the
previous period, which the page compares with, has data too, as on a site
measured for a while). The database is dropped at the end unless
--keep is given; --database NAME times an existing one (kept by an earlier
run) instead of loading a new one. Results go to bench/results/dashboard.json.
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
import statistics
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

from collector import db, maintenance  # noqa: E402
from collector.row import COLUMNS  # noqa: E402
from collector.settings import Settings  # noqa: E402
from tests.conftest import Collector  # noqa: E402

SITE = "bench"
TOKEN = "bench-token-" + "0" * 20  # 32 characters, as settings.py requires
CHANNELS = [("search", 0.35), ("direct", 0.2), ("social", 0.12), ("email", 0.1),
            ("paid", 0.13), ("referral", 0.06), ("internal", 0.04)]
CAMPAIGNS = ["(none)"] * 8 + [f"campaign-{i:02d}" for i in range(30)]
DEVICES = [("mobile", 0.62), ("desktop", 0.33), ("tablet", 0.05)]
COUNTRIES = [("FR", 0.7), ("BE", 0.1), ("CH", 0.07), ("CA", 0.05), ("US", 0.04), ("DE", 0.04)]
PATHS = ["/", "/c/shoes", "/c/bags", "/p/42", "/p/43", "/p/77", "/cart", "/checkout"]

LOAD_CHUNK = 50_000


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
        # In statements of 50,000 beacons, as bench/views.py loads: each statement's
        # page views are folded at once, and one statement of a million folds
        # slowly (the fold is planned for the collector's batches).
        for start in range(0, len(rows), LOAD_CHUNK):
            await conn.copy_records_to_table("beacons", schema_name="binome",
                                             records=rows[start:start + LOAD_CHUNK],
                                             columns=COLUMNS)
        await conn.execute("ANALYZE binome.beacons")
        print(f"COPY + ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)
        return len(rows)
    finally:
        await conn.close()


async def roll_up(url: str, lag_days: int) -> float:
    """`binome maintain`, as `binome serve` runs it every few minutes: closed
    days rolled up, the last `lag_days` + today left live."""
    conn = await db.connect(url)
    try:
        started = time.perf_counter()
        report = await maintenance.maintain(conn, retention_months=25, rollup_lag_days=lag_days)
        assert report is not None
        await conn.execute("ANALYZE")
        seconds = time.perf_counter() - started
        print(f"maintain: {report.summary()}; + ANALYZE {seconds:.1f} s", flush=True)
        return round(seconds, 1)
    finally:
        await conn.close()


def time_dashboard(base: str, days: int, rounds: int) -> dict[str, Any]:
    """The page and its assets, then GET /dashboard/data: `rounds` first loads,
    each once the collector's cache of the last one has expired
    (collector/dashboard.py: CACHE_SECONDS), then one load from that cache."""
    from collector.dashboard import CACHE_SECONDS

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

        def load() -> tuple[float, Any]:
            started = time.perf_counter()
            response = client.get("/dashboard/data", params=period)
            assert response.status_code == 200, response.text[:500]
            return time.perf_counter() - started, response.json()

        first = []
        for round_ in range(rounds):
            if round_:
                time.sleep(CACHE_SECONDS + 1)
            seconds, data = load()
            first.append(seconds)
            print(f"first load {round_ + 1}/{rounds}: {seconds * 1000:.0f} ms "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
        cached, _ = load()
    return {
        "page_and_assets_seconds": round(static_seconds, 3),
        "data_first_load_seconds": [round(t, 3) for t in first],
        "data_first_load_median_seconds": round(statistics.median(first), 3),
        "data_first_load_max_seconds": round(max(first), 3),
        "data_cached_seconds": round(cached, 3),
        "page_views_in_period": data["period"]["current"]["page_views"],
        "page_views_in_previous_period": data["period"]["previous"]["page_views"],
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


async def time_queries(url: str, days: int) -> dict[str, float]:
    """Each of the endpoint's statements alone, one after the other (the
    endpoint runs them side by side on four connections)."""
    from collector import dashboard, proof

    today = dt.datetime.now(dt.UTC).date()
    filters = dashboard.Filters(SITE, today - dt.timedelta(days=days - 1), today)
    args = (SITE, filters.previous_first_day, filters.first_day, filters.last_day, None, None)
    statements = {
        "counts": (dashboard._COUNTS_QUERY, *args),
        **{f"{metric}_p75{'_by_device_or_country' if split else ''}": (sql, *args)
           for (metric, split), sql in dashboard._P75_QUERIES.items()},
        "releases": (dashboard._RELEASES_QUERY, SITE, filters.first_day, filters.last_day),
        "speed": (dashboard._SPEED_QUERY, SITE),
        "comparisons": (proof.COMPARISONS_QUERY, SITE),
        "speed_worth": (proof.SPEED_WORTH_QUERY, SITE),
    }
    conn = await asyncpg.connect(url)
    timings = {}
    try:
        await conn.execute(f"SET statement_timeout = 0; SET jit = off;"
                           f" SET work_mem = '{dashboard.WORK_MEM}'")
        for name, (sql, *statement_args) in statements.items():
            started = time.perf_counter()
            await conn.fetch(sql, *statement_args)
            timings[name] = round(time.perf_counter() - started, 3)
    finally:
        await conn.close()
    return timings


async def take_snapshots(url: str) -> int:
    """What `binome serve` keeps doing every BINOME_LIVE_SNAPSHOT_SECONDS once a
    live day has BINOME_LIVE_SNAPSHOT_PAGE_VIEWS (defaults): snapshot the busy
    live days, which the views then read instead of computing them. Returns
    the site-days snapshotted."""
    defaults = Settings.model_fields
    conn = await db.connect(url)
    try:
        started = time.perf_counter()
        taken = await maintenance.refresh_snapshots(
            conn, min_page_views=defaults["live_snapshot_page_views"].default,
            interval_seconds=defaults["live_snapshot_seconds"].default) or []
        print(f"snapshots: {len(taken)} busy live site-days,"
              f" {sum(t[2] for t in taken):,} page views, {time.perf_counter() - started:.1f} s",
              flush=True)
        return len(taken)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--page-views", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--period-days", type=int,
                        help="the period the page asks for: the last N days (default: --days)")
    parser.add_argument("--rounds", type=int, default=5, help="first loads to time")
    parser.add_argument("--rollup-lag-days", type=int, default=1,
                        help="days left live before today (BINOME_ROLLUP_LAG_DAYS)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--database", help="time this existing database instead of loading one")
    args = parser.parse_args()

    server = os.environ.get("BINOME_DATABASE_URL",
                            "postgresql://postgres@127.0.0.1:5432/postgres")
    name = args.database or "binome_bench_dashboard_" + secrets.token_hex(4)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    url = _with_database(server, name)
    period_days = args.period_days or args.days
    result: dict[str, Any] = {"page_views": args.page_views, "days": args.days,
                              "period_days": period_days, "rollup_lag_days": args.rollup_lag_days}
    if args.database is None:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    collector = None
    try:
        if args.database is None:
            result["beacons"] = asyncio.run(load(url, args.page_views, args.days))
            result["maintain_seconds"] = asyncio.run(roll_up(url, args.rollup_lag_days))
        results_dir = ROOT / "bench" / "results"
        results_dir.mkdir(parents=True, exist_ok=True)
        collector = Collector(url, results_dir / "dashboard-collector.log",
                              dashboard_token=TOKEN)
        result |= time_dashboard(collector.url, period_days, args.rounds)
        collector.stop()
        collector = None
        result["statements_seconds"] = asyncio.run(time_queries(url, period_days))
        # The same loads once the live days are read from their snapshots, as
        # a running collector keeps them when they are that busy.
        if asyncio.run(take_snapshots(url)):
            collector = Collector(url, results_dir / "dashboard-collector.log",
                                  dashboard_token=TOKEN)
            snapshotted = time_dashboard(collector.url, period_days, args.rounds)
            collector.stop()
            collector = None
            snapshotted["statements_seconds"] = asyncio.run(time_queries(url, period_days))
            result["with_live_days_snapshotted"] = snapshotted
        (results_dir / "dashboard.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        if collector is not None:
            collector.stop()
        if args.keep or args.database:
            print(f"kept database {url}")
        else:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
