"""Synthetic beacons, shaped like the collector's rows (collector.enrich.COLUMNS),
for tests that load data directly: sessions across midnight, resends, out of
order seqs, consent given or withdrawn mid-page, split page views, values on the
CrUX thresholds."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import asyncpg

from collector.row import COLUMNS

Row = tuple[Any, ...]

CHANNELS = [("search", None, None, None), ("email", "newsletter", "email", "black-friday"),
            ("paid", "google", "cpc", "black-friday"), ("paid", "google", "cpc", "spring"),
            ("social", "facebook", "social", "spring"), ("direct", None, None, None),
            ("referral", None, None, None)]
# Values on and around the thresholds, so a `<` for a `<=` shows.
EDGES = {"lcp": [2500, 4000, 2500.0001, 100, 0], "inp": [200, 500, 8, 0],
         "cls": [0.1, 0.25, 0.1000001, 0.0], "fcp": [1800, 3000], "ttfb": [800, 1800, 0]}


def _metric(rng: random.Random, name: str) -> float:
    if rng.random() < 0.08:
        return rng.choice(EDGES[name])
    if name == "cls":
        return round(rng.expovariate(8), 4)
    median = {"lcp": 2300, "inp": 150, "fcp": 1500, "ttfb": 500}[name]
    return round(rng.lognormvariate(0, 0.6) * median, 1)


def _row(**values: Any) -> Row:
    defaults: dict[str, Any] = {c: None for c in COLUMNS}
    defaults["event_count"] = 0
    defaults.update(values)
    return tuple(defaults[c] for c in COLUMNS)


def synthetic_beacons(rng: random.Random, site: str, start: dt.date, days: int,
                      sessions: int, prefix: str = "") -> list[Row]:
    """Beacons of `sessions` sessions starting within `days` days from `start`."""
    rows: list[Row] = []
    midnight = dt.datetime.combine(start, dt.time(), dt.UTC)
    for s in range(sessions):
        if rng.random() < 0.15:  # starts just before a midnight
            begin = midnight + dt.timedelta(days=rng.randrange(days), hours=23,
                                            minutes=rng.randrange(30, 60))
        else:
            begin = midnight + dt.timedelta(seconds=rng.randrange(days * 86400))
        pages = rng.choice([1, 1, 1, 2, 2, 3, 4])
        sid = f"{prefix}s{s:05d}" if pages > 1 or rng.random() < 0.8 else None
        channel, source, medium, campaign = rng.choice(CHANNELS)
        session_consent = "marketing" if rng.random() < 0.65 else "performance"
        release = rng.choice(["2026.11.2", "2026.11.3", "2026.11.3", None])
        device_class = rng.choice(["mobile", "mobile", "desktop", "tablet", None])
        country = rng.choice(["FR", "FR", "DE", "US", None])
        t0 = begin
        for page in range(pages):
            if page:
                t0 += dt.timedelta(seconds=rng.randrange(5, 3000))
                channel = "internal"
            pv = f"{prefix}p{s:05d}{page}"
            consent = session_consent if rng.random() < 0.9 else rng.choice(
                ["marketing", "performance"])
            beacons = rng.choice([1, 1, 2, 2, 3])
            has_t0 = rng.random() > 0.04
            late = rng.random() < 0.03  # one beacon far outside the t0 window: another partition
            cls = 0.0
            for seq in range(beacons):
                delay = rng.uniform(0.5, 30) + seq * rng.uniform(5, 900)
                received = t0 + dt.timedelta(seconds=delay)
                beacon_consent = consent
                if seq == 0 and beacons > 1 and rng.random() < 0.1:
                    beacon_consent = "performance" if consent == "marketing" else "marketing"
                if late and seq == beacons - 1 and seq > 0:
                    received += dt.timedelta(days=3)
                day = t0.date() if has_t0 and not (late and seq == beacons - 1 and seq > 0) \
                    else received.date()
                values: dict[str, float | None] = {}
                if seq == 0:
                    for name in ("lcp", "fcp", "ttfb"):
                        values[name] = _metric(rng, name) if rng.random() < 0.9 else None
                if seq > 0 or rng.random() < 0.3:
                    cls += _metric(rng, "cls") if rng.random() < 0.5 else 0
                    values["cls"] = round(cls, 4) if rng.random() < 0.9 else None
                    values["inp"] = _metric(rng, "inp") if rng.random() < 0.6 else None
                marketing = beacon_consent == "marketing"
                converted = page > 0 and seq == beacons - 1 and rng.random() < 0.3
                revenue = (round(rng.uniform(5, 200), 2)
                           if converted and rng.random() < 0.8 else None)
                dims = {"page_type": rng.choice(["home", "product", "cart"])}
                if marketing:
                    dims["ab_variant"] = rng.choice("AB")
                row = _row(
                    site=site, day=day, pv=pv, seq=seq, sid=sid, received_at=received,
                    t0=t0 if has_t0 else None, consent=beacon_consent,
                    path=f"/p/{rng.randrange(5)}",
                    utm_source=source if marketing and page == 0 else None,
                    utm_medium=medium if marketing and page == 0 else None,
                    utm_campaign=campaign if marketing and page == 0 else None,
                    ref_origin=("https://www.google.com" if channel == "search" else None)
                    if marketing else None,
                    channel=channel if marketing else None,
                    release=release if rng.random() < 0.95 else None,
                    dims=json.dumps(dims), device_class=device_class, browser="Chrome",
                    os="Android", country=country, **values,
                    event_count=1 if converted and marketing else 0,
                    revenue=revenue if converted and marketing else None,
                    events=json.dumps([{"name": "purchase"}]) if converted and marketing else None,
                )
                rows.append(row)
    return rows


async def insert_beacons(conn: asyncpg.Connection, rows: list[Row], rng: random.Random,
                         max_chunk: int = 200) -> None:
    """COPY into binome.beacons in shuffled chunks (one statement each, as the writer's
    batches), resending a few rows; a resend is refused by the primary key."""
    rows = list(rows)
    rng.shuffle(rows)
    day_col = COLUMNS.index("day")
    for day in sorted({r[day_col] for r in rows}):
        await conn.execute("SELECT binome.ensure_beacon_partition($1)", day)
    position = 0
    while position < len(rows):
        size = rng.randint(1, max_chunk)
        chunk = rows[position:position + size]
        position += size
        async with conn.transaction():
            await conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS synthetic_in (LIKE binome.beacons) ON COMMIT DROP")
            await conn.copy_records_to_table("synthetic_in", records=chunk, columns=COLUMNS)
            resend = rng.sample(rows[:position], min(3, position))
            await conn.copy_records_to_table("synthetic_in", records=resend, columns=COLUMNS)
            await conn.execute(
                "INSERT INTO binome.beacons SELECT DISTINCT ON (site, day, pv, seq) * "
                "FROM synthetic_in ON CONFLICT DO NOTHING")


def continuation_beacons(rng: random.Random, rows: list[Row], count: int) -> list[Row]:
    """Beacons that go on from `rows`: the next seq of existing page views (some
    converting) and new page views of existing sessions, some after midnight."""
    col = {c: i for i, c in enumerate(COLUMNS)}
    last: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row[col["site"]], row[col["pv"]])
        if key not in last or row[col["seq"]] > last[key][col["seq"]]:
            last[key] = row
    picked = rng.sample(sorted(last), min(count, len(last)))
    out: list[Row] = []
    for n, key in enumerate(picked):
        row = list(last[key])
        marketing = row[col["consent"]] == "marketing"
        converts = marketing and rng.random() < 0.4
        if n % 2 == 0:  # the page view goes on
            row[col["seq"]] += 1
            row[col["received_at"]] += dt.timedelta(hours=rng.uniform(0.1, 20))
        elif row[col["sid"]] is not None:  # the session goes on, with a new page view
            t0 = (row[col["t0"]] or row[col["received_at"]]) + dt.timedelta(
                minutes=rng.uniform(1, 90))
            row[col["pv"]] = row[col["pv"]] + "n"
            row[col["seq"]] = 0
            row[col["t0"]] = t0
            row[col["day"]] = t0.date()
            row[col["received_at"]] = t0 + dt.timedelta(seconds=3)
            row[col["lcp"]] = _metric(rng, "lcp")
            row[col["utm_campaign"]] = row[col["utm_source"]] = row[col["utm_medium"]] = None
            row[col["channel"]] = "internal" if marketing else None
        else:
            continue
        row[col["cls"]] = (row[col["cls"]] or 0) + 0.01
        row[col["inp"]] = _metric(rng, "inp")
        row[col["event_count"]] = 1 if converts else 0
        row[col["revenue"]] = round(rng.uniform(5, 90), 2) if converts else None
        out.append(tuple(row))
    return out
