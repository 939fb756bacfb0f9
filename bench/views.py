"""How fast the rum views answer at scale: 10 million page views over 30 days.

    .venv/bin/python bench/views.py [--page-views 10000000] [--today 1000000]

Creates a fresh database on the server in BINOME_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres), loads page views of 3 sites over
30 UTC days by COPY into binome.beacons (through the same trigger that folds the
collector's batches), runs `binome maintain` (the 29 closed days are rolled
up; today stays live), then times each view for the 30-day range and for
today's live part, then snapshots the busy live day as `binome serve` does
(sql/functions/50_live_snapshots.sql) and times them again, and drops the database (--keep
keeps it; --database NAME times a kept one again). Each line gives the
median time of a run (the plan reused, as a prepared statement) and the
median planning time, which a client sending plain queries pays on top;
--past-days N adds empty daily partitions before the data while timing, to
show that neither grows with the history kept.

Distributions: sessions of 1 to 6 page views (2.2 on average), 60 % with
marketing consent, channels search/direct/paid/email/social/referral with 40
campaigns (Zipf), 60 % mobile, 15 countries, a new release per site every week,
the shop's sessions split between A/B variants A and B;
LCP, FCP, TTFB log-normal (mobile slower), INP on 70 % of page views, CLS 0
for half of them; 1 to 3 beacons per page view; 3 % of sessions convert on a
later page. Today gets --today page views, the 29 days before share the rest.
Each page view becomes beacons as collector/traffic.py makes them for the demo
too (what the collector stores at its consent level: no A/B variant, campaign
or conversion at the performance level).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import secrets
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector import PROJECT_ROOT, db, objectives
from collector.maintenance import maintain, refresh_snapshots
from collector.row import COLUMNS
from collector.settings import Settings
from collector.traffic import COL, PageView, beacon_rows, copy_day, lognormal, zipf_choice

SITES = [("shop", 0.6), ("blog", 0.25), ("docs", 0.15)]
CHANNELS = [("search", 0.35), ("direct", 0.2), ("paid", 0.15), ("email", 0.1),
            ("social", 0.12), ("referral", 0.08)]
COUNTRIES = ["FR", "DE", "US", "GB", "ES", "IT", "NL", "BE", "CH", "PL", "SE", "PT", "AT",
             "IE", "DK"]
CAMPAIGNS = [f"campaign-{n:02d}" for n in range(40)]
PATHS = [f"/p/{n}" for n in range(300)]
PAGE_TYPE = {p: n % 4 for n, p in enumerate(PATHS)}
GB_PER_MILLION = 1.0  # measured: raw beacons, page views and their indexes


def day_rows(rng: random.Random, day: dt.date, page_views: int, day_index: int
             ) -> Iterator[tuple[Any, ...]]:
    """Beacons of about `page_views` page views starting on `day`."""
    midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
    sites = [s for s, _ in SITES]
    site_weights = [w for _, w in SITES]
    made = 0
    session = 0
    page_types = ("home", "product", "cart", "article")
    while made < page_views:
        session += 1
        site = rng.choices(sites, site_weights)[0]
        sid = f"s{day:%j}{session:08d}{rng.randrange(10**6):06d}"
        pages = min(1 + int(rng.expovariate(1 / 1.2)), 6)
        marketing = rng.random() < 0.6
        channel = rng.choices([c for c, _ in CHANNELS], [w for _, w in CHANNELS])[0]
        campaign = zipf_choice(rng, CAMPAIGNS) if channel in ("paid", "email", "social") else None
        device = rng.choices(["mobile", "desktop", "tablet"], [0.6, 0.35, 0.05])[0]
        slow = 1.3 if device == "mobile" else 1.0
        country = zipf_choice(rng, COUNTRIES, 1.3)
        # The shop runs an A/B test (rum.comparisons' kind ab_variant): its sessions
        # are split between variants A and B.
        variant = {"ab_variant": rng.choice(["A", "B"])} if site == "shop" else {}
        # A new release each week per site, a day of overlap while it rolls out.
        week = (day_index + sites.index(site)) // 7
        release = f"2026.{week + 1}.{sites.index(site)}"
        if rng.random() < 0.1:
            release = f"2026.{max(week, 1)}.{sites.index(site)}"
        # Diurnal: more sessions in the day than at night.
        hour = rng.choices(range(24), [1, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                       7, 8, 8, 6, 4, 2])[0]
        t0 = midnight + dt.timedelta(hours=hour, seconds=rng.randrange(3600))
        converts_on = rng.randrange(1, pages) if pages > 1 and rng.random() < 0.06 else -1
        for page in range(pages):
            if page:
                t0 += dt.timedelta(seconds=rng.randrange(10, 400))
            path = zipf_choice(rng, PATHS, 0.9)
            lcp = lognormal(rng, 1900 * slow, 0.55)
            yield from beacon_rows(rng, PageView(
                site=site, pv=f"{sid}-{page}", sid=sid, t0=t0, marketing=marketing, path=path,
                release=release, dims={"page_type": page_types[PAGE_TYPE[path]]} | variant,
                device_class=device, browser="Chrome" if device != "tablet" else "Safari",
                os="Android" if device == "mobile" else "Windows", country=country, lcp=lcp,
                fcp=round(lcp * rng.uniform(0.4, 0.9), 1), ttfb=lognormal(rng, 380 * slow, 0.6),
                inp=lognormal(rng, 110 * slow, 0.7) if rng.random() < 0.7 else None,
                cls=0.0 if rng.random() < 0.5 else round(rng.expovariate(1 / 0.08), 4),
                channel=channel if page == 0 else "internal",
                utm_source=channel if campaign and page == 0 else None,
                utm_campaign=campaign if page == 0 else None,
                revenue=round(rng.uniform(10, 250), 2) if page == converts_on else None))
            made += 1


async def load(conn: asyncpg.Connection, today: dt.date, total: int, today_pvs: int,
               days: int, seed: int) -> tuple[int, float]:
    rng = random.Random(seed)
    per_day = (total - today_pvs) // (days - 1)
    loaded = 0
    started = time.perf_counter()
    for index in range(days):
        day = today - dt.timedelta(days=days - 1 - index)
        count = today_pvs if day == today else per_day
        loaded += await copy_day(conn, day, day_rows(rng, day, count, index))
        elapsed = time.perf_counter() - started
        print(f"  {day}: {count:,} page views; {loaded:,} beacons in {elapsed:.0f} s "
              f"({loaded / elapsed:,.0f}/s)", flush=True)
    return loaded, time.perf_counter() - started


async def load_ingest_counts(conn: asyncpg.Connection, today: dt.date, days: int) -> None:
    await conn.execute("""
        INSERT INTO binome.ingest_counts (site, minute, received, accepted, rejected, rows_written)
        SELECT s.site, m, 300, 295, 5, 290
        FROM unnest($1::text[]) AS s(site),
             generate_series($2::date - $3::int + 1, $2::date + 1, interval '1 minute') AS m""",
                       [s for s, _ in SITES], today, days)


SNAPSHOT_PAGE_VIEWS = Settings.model_fields["live_snapshot_page_views"].default

# Shared objectives rum.objectives computes (`binome objective add`): a site's
# whole traffic, a device, a campaign's landing pages, a channel.
OBJECTIVES = [("shop", "lcp_p75", 2500, {}),
              ("shop", "cwv_good_pct", 75, {"device_class": "mobile"}),
              ("shop", "conversion_rate", 3, {"utm_campaign": "campaign-01", "landing": True}),
              ("shop", "inp_p75", 200, {"channel": "search"}), ("blog", "lcp_p75", 2500, {}),
              ("docs", "cls_p75", 0.1, {})]

QUERIES: list[tuple[str, str]] = [
    ("page_views_enriched: one page view by id",
     "SELECT * FROM rum.page_views_enriched WHERE site = 'shop' AND pv = $PV"),
    ("page_views_enriched: 30 days, p75 LCP of one path (one site)",
     "SELECT count(*), percentile_cont(0.75) WITHIN GROUP (ORDER BY lcp)"
     " FROM rum.page_views_enriched WHERE site = 'shop' AND day >= $FROM AND path = '/p/7'"),
    ("page_views_enriched: 30 days, count and mean LCP of every page view",
     "SELECT count(*), avg(lcp) FROM rum.page_views_enriched WHERE day >= $FROM"),
    ("sessions: 30 days, conversion of every session",
     "SELECT count(*), avg(converted::int) FROM rum.sessions WHERE day >= $FROM"),
    ("scorecard_daily: 30 days, every group and figure computed (all sites)",
     "SELECT count(*), sum(page_views), avg(lcp_p75), avg(inp_p75), avg(cls_p75), avg(fcp_p75),"
     " avg(ttfb_p75), avg(cwv_good_pct), avg(conversion_rate), sum(revenue)"
     " FROM rum.scorecard_daily WHERE day >= $FROM"),
    ("scorecard_daily: 30 days, per channel and campaign (one site)",
     "SELECT channel, utm_campaign, sum(page_views), sum(sessions), sum(conversions),"
     " sum(revenue) FROM rum.scorecard_daily WHERE site = 'shop' AND day >= $FROM"
     " GROUP BY 1, 2"),
    ("scorecard_histograms: 30 days, LCP bins per channel (one site)",
     "SELECT channel, bin, sum(page_views) FROM rum.scorecard_histograms"
     " WHERE site = 'shop' AND day >= $FROM AND metric = 'lcp' GROUP BY 1, 2"),
    ("campaign_histograms: 30 days, LCP bins per channel (one site)",
     "SELECT channel, bin, sum(page_views) FROM rum.campaign_histograms"
     " WHERE site = 'shop' AND day >= $FROM AND metric = 'lcp' GROUP BY 1, 2"),
    ("perf_vs_conversion: every bucket (all 30 days)", "SELECT * FROM rum.perf_vs_conversion"),
    ("speed_worth: every site, channel and campaign (28 days)", "SELECT * FROM rum.speed_worth"),
    ("release_comparison: every release (all 30 days)", "SELECT * FROM rum.release_comparison"),
    ("comparisons: every release, variant and week (all 30 days)",
     "SELECT * FROM rum.comparisons"),
    ("objectives: 6 objectives over 28 days (all sites)", "SELECT * FROM rum.objectives"),
    ("objective_weeks: 6 objectives x 8 weeks", "SELECT * FROM rum.objective_weeks"),
    # What the scorecard's Objectives band reads: the last check's figures.
    ("objective_results: the Objectives band's statement (one site)",
     objectives.DASHBOARD_QUERY.replace("$1", "'shop'")),
    ("ingest_health: 30 days of minutes",
     "SELECT * FROM rum.ingest_health WHERE minute >= $FROM"),
]
TODAY_QUERIES: list[tuple[str, str]] = [
    ("page_views_enriched: today, count and mean LCP",
     "SELECT count(*), avg(lcp) FROM rum.page_views_enriched WHERE day = $TODAY"),
    ("scorecard_daily: today, every group (all sites)",
     "SELECT * FROM rum.scorecard_daily WHERE day = $TODAY"),
    ("scorecard_daily: today, every group and figure computed (all sites)",
     "SELECT count(*), sum(page_views), avg(lcp_p75), avg(inp_p75), avg(cls_p75), avg(fcp_p75),"
     " avg(ttfb_p75), avg(cwv_good_pct), avg(conversion_rate), sum(revenue)"
     " FROM rum.scorecard_daily WHERE day = $TODAY"),
    ("scorecard_daily: today, one site",
     "SELECT * FROM rum.scorecard_daily WHERE day = $TODAY AND site = 'shop'"),
    ("scorecard_histograms: today, LCP bins per channel (one site)",
     "SELECT channel, bin, sum(page_views) FROM rum.scorecard_histograms"
     " WHERE site = 'shop' AND day = $TODAY AND metric = 'lcp' GROUP BY 1, 2"),
    ("live part of perf_vs_conversion (today)", "SELECT * FROM binome.landing_live"),
    ("live part of release_comparison (today)", "SELECT * FROM binome.release_live"),
    ("live part of comparisons (today)", "SELECT * FROM binome.comparison_live"),
]


async def time_query(conn: asyncpg.Connection, sql: str, runs: int
                     ) -> tuple[float, float, int]:
    """(median ms to plan, median ms to run, rows). A run reuses the statement's
    plan (asyncpg prepares it once), as a dashboard or a report does; a client
    sending plain queries (psql) pays the planning as well, every time."""
    plans = []
    for _ in range(3):
        [explained] = json.loads(await conn.fetchval("EXPLAIN (SUMMARY, FORMAT JSON) " + sql))
        plans.append(explained["Planning Time"])
    times = []
    rows = 0
    for _ in range(runs):
        started = time.perf_counter()
        result = await conn.fetch(sql)
        times.append((time.perf_counter() - started) * 1000)
        rows = len(result)
    return statistics.median(plans), statistics.median(times), rows


async def fold_cost(conn: asyncpg.Connection, today: dt.date, batches: int = 30,
                    size: int = 500) -> dict[str, float]:
    """The write path: median ms to store a collector-sized batch, with the trigger
    that folds page views and without it."""
    result = {}
    await conn.execute("CREATE TEMP TABLE IF NOT EXISTS fold_in (LIKE binome.beacon_columns)"
                       " ON COMMIT DELETE ROWS")
    for seed, mode in enumerate(("with the fold", "without the fold")):
        rng = random.Random(1000 + seed)
        prefix = "FN"[seed]
        rows = [row[:COL["pv"]] + (prefix + row[COL["pv"]],) + row[COL["pv"] + 1:]
                for row in day_rows(rng, today, batches * size // 2, 29)]
        if mode == "without the fold":
            await conn.execute("ALTER TABLE binome.beacons DISABLE TRIGGER fold_page_views")
        times = []
        try:
            for start in range(0, min(len(rows), batches * size), size):
                started = time.perf_counter()
                async with conn.transaction():
                    await conn.copy_records_to_table("fold_in", records=rows[start:start + size],
                                                      columns=COLUMNS)
                    await conn.execute("INSERT INTO binome.beacons SELECT * FROM fold_in"
                                       " ON CONFLICT DO NOTHING")
                times.append((time.perf_counter() - started) * 1000)
        finally:
            await conn.execute("ALTER TABLE binome.beacons ENABLE TRIGGER fold_page_views")
        result[mode] = statistics.median(times)
    return result


async def add_past_days(conn: asyncpg.Connection, days: int) -> list[str]:
    """Empty daily partitions for `days` days before the first loaded one (the
    partitions of a longer history: what the views must not plan); their names."""
    if not days:
        return []
    first = await conn.fetchval("SELECT min(day) FROM binome.page_views")
    past = [first - dt.timedelta(days=n) for n in range(days, 0, -1)]
    created = [f"{table}_{day:%Y%m%d}" for day in past for table in ("beacons", "page_view_facts")
               if await conn.fetchval("SELECT to_regclass($1) IS NULL",
                                      f"binome.{table}_{day:%Y%m%d}")]
    await conn.execute("SELECT binome.ensure_beacon_partition(d) FROM unnest($1::date[]) AS d",
                       past)
    count = await conn.fetchval("SELECT count(*) FROM pg_inherits"
                                " WHERE inhparent = 'binome.page_view_facts'::regclass")
    print(f"\n{days} empty days added before {first}: {count} daily partitions")
    return created


async def drop_past_days(conn: asyncpg.Connection, created: list[str]) -> None:
    for table in created:
        await conn.execute(f'DROP TABLE IF EXISTS binome."{table}"')


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--page-views", type=int, default=10_000_000)
    parser.add_argument("--today", type=int, default=1_000_000,
                        help="page views today (part of --page-views)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5, help="runs per query (median reported)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--past-days", type=int, default=0, metavar="N",
                        help="add N empty daily partitions before the first loaded day while"
                        " timing, as a database kept N more days has (25 months: 760);"
                        " dropped afterwards")
    parser.add_argument("--database", help="time an existing database kept by --keep instead of"
                        " loading a new one (migrated and maintained first)")
    args = parser.parse_args()

    server = os.environ.get("BINOME_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    free_gb = shutil.disk_usage("/").free / 1e9
    print(f"disk: {free_gb:.0f} GB free; this run needs about "
          f"{args.page_views / 1e6 * GB_PER_MILLION:.0f} GB")
    if free_gb < args.page_views / 1e6 * GB_PER_MILLION * 1.5:
        print("not enough disk: use --page-views", file=sys.stderr)
        return 1
    name = args.database or "binome_bench_" + secrets.token_hex(4)
    admin = await asyncpg.connect(server)
    if args.database:
        args.keep = True
    else:
        await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    today = dt.datetime.now(dt.UTC).date()
    try:
        conn = await db.connect(url)
        started = time.perf_counter()
        await db.migrate(conn, PROJECT_ROOT / "sql")
        print(f"migrate: {time.perf_counter() - started:.1f} s")
        if args.database:
            # The data were loaded on their own day: time them as of that day.
            # Its busiest day (a session that went on past midnight puts a
            # few page views on the day after).
            today = await conn.fetchval("SELECT day FROM binome.page_views GROUP BY day"
                                        " ORDER BY count(*) DESC LIMIT 1")
            args.days = (today - await conn.fetchval("SELECT min(day) FROM binome.page_views")
                         ).days + 1
        else:
            for site, _ in SITES:
                await db.add_site(conn, site, [])
            print(f"loading {args.page_views:,} page views into {name} "
                  f"({args.today:,} today)", flush=True)
            beacons, seconds = await load(conn, today, args.page_views, args.today, args.days,
                                          args.seed)
            await load_ingest_counts(conn, today, args.days)
            print(f"loaded {beacons:,} beacons in {seconds:.0f} s ({beacons / seconds:,.0f}/s, "
                  "each statement folded by the trigger)")
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        print(f"vacuum analyze: {time.perf_counter() - started:.0f} s")
        report = await maintain(conn, retention_months=25, rollup_lag_days=0, today=today)
        assert report is not None
        print(f"maintain: {report.summary()}")
        await conn.execute("VACUUM ANALYZE")
        sizes = await conn.fetch("""
            SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)) AS size
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'binome' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            ORDER BY pg_total_relation_size(c.oid) DESC LIMIT 8""")
        raw = await conn.fetchval(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits"
            " WHERE inhparent = 'binome.beacons'::regclass")
        print("sizes: binome.beacons (partitions) " + raw + "; "
              + ", ".join(f"{r['relname']} {r['size']}" for r in sizes))
        await conn.executemany(
            "INSERT INTO binome.objectives (site, name, metric, target, scope)"
            " VALUES ($1, $1 || '-' || $2 || '-' || $5::text, $2, $3, $4::jsonb)"
            " ON CONFLICT DO NOTHING",
            [(site, metric, target, json.dumps(scope), str(n))
             for n, (site, metric, target, scope) in enumerate(OBJECTIVES)])
        # `binome objective check` (what binome serve runs every
        # BINOME_OBJECTIVE_CHECK_MINUTES): computes and stores every objective.
        started = time.perf_counter()
        await objectives.check(conn, None)
        print(f"binome objective check ({len(OBJECTIVES)} objectives, computed and stored):"
              f" {time.perf_counter() - started:.1f} s")
        pv = await conn.fetchval("SELECT pv FROM binome.page_views WHERE site = 'shop' LIMIT 1")
        substitutions = {"$FROM": f"'{today - dt.timedelta(days=args.days - 1)}'",
                         "$TODAY": f"'{today}'", "$PV": f"'{pv}'"}

        def sql_for(template: str) -> str:
            for key, value in substitutions.items():
                template = template.replace(key, value)
            return template

        past = await add_past_days(conn, args.past_days)
        defaults = await conn.fetchval("SELECT current_setting('work_mem') || ', jit '"
                                       " || current_setting('jit')")
        settings = (("RESET work_mem", f"server defaults ({defaults})"),
                    ("SET work_mem = '64MB'", "work_mem = 64MB (docs/deploy.md: each analyst login)"))

        async def time_all(groups: tuple[tuple[str, list[tuple[str, str]]], ...]) -> None:
            for setting, label in settings:
                await conn.execute(setting)
                print(f"\n{label}; median of {args.runs} runs")
                for title, group in groups:
                    print(f"  {title}:")
                    for label, template in group:
                        plan_ms, ms, rows = await time_query(conn, sql_for(template),
                                                             args.runs)
                        print(f"    {ms:8.1f} ms  {rows:>7,} rows  (plan {plan_ms:5.1f} ms)"
                              f"  {label}", flush=True)

        if args.database:
            # A kept database may still hold a fresh snapshot of an earlier run
            # (fresh for an hour): expired, so that what is timed as computed live is.
            await conn.execute("UPDATE binome.live_snapshots SET valid_until = now()")
        await time_all((("30 days, today computed live (as with snapshots off)", QUERIES),
                        ("today, computed live (as with snapshots off)", TODAY_QUERIES)))
        # What `binome serve` does every BINOME_LIVE_SNAPSHOT_SECONDS once today
        # is busy; fresh for an hour here, so that the timings below read it.
        started = time.perf_counter()
        taken = await refresh_snapshots(conn, min_page_views=SNAPSHOT_PAGE_VIEWS,
                                        interval_seconds=1800)
        print(f"\nsnapshot of the busy live days: {len(taken or [])} site-days,"
              f" {sum(t[2] for t in taken or []):,} page views,"
              f" {time.perf_counter() - started:.1f} s")
        await time_all((("today, from its snapshot (as binome serve keeps a busy day)",
                         TODAY_QUERIES),
                        ("30 days, today from its snapshot", QUERIES)))
        # A second run over a kept database would find its batches already stored.
        costs = await fold_cost(conn, today) if not args.database else None
        if costs:
            print("\nwrite path, a batch of 500 beacons (median of 30): "
                  + "; ".join(f"{mode} {ms:.1f} ms" for mode, ms in costs.items())
                  + f"; folding serialised, so at most {500_000 / costs['with the fold']:,.0f}"
                  " beacons/s over all collectors")
        await drop_past_days(conn, past)
        await conn.close()
    finally:
        if not args.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print(f"kept database {name}")
        await admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
