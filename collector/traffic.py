"""Synthetic traffic: page views as rows of binome.beacons, stored by COPY.

Shared by `binome serve --demo` (collector/demo.py: a shop's month, told to
show what Binome is for) and the benchmarks (bench/views.py: volume). A
generator describes page views; this module turns each into the beacons the
snippet sends for it, with what the collector stores at its consent level
(docs/beacon-format.md, "Consent"), and COPYs them into binome.beacons, whose
statement trigger folds them into page views (sql/functions/30_fold.sql) as it
does the writer's batches when the fold is not deferred.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from collector.row import COLUMNS, Record

COL = {c: i for i, c in enumerate(COLUMNS)}
# Statements of this many beacons: each one's page views are folded at once.
COPY_CHUNK = 50_000


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return round(median * math.exp(rng.gauss(0, sigma)), 1)


def zipf_choice(rng: random.Random, items: Sequence[str], s: float = 1.1) -> str:
    weights = [1 / (k + 1) ** s for k in range(len(items))]
    return rng.choices(items, weights)[0]


@dataclass
class PageView:
    """One page view as a generator describes it: what the collector would store
    at the marketing level (the performance level drops the marketing part)."""

    site: str
    pv: str
    sid: str
    t0: dt.datetime
    marketing: bool
    path: str
    release: str | None
    dims: dict[str, str]
    device_class: str
    browser: str
    os: str
    country: str | None
    lcp: float | None
    fcp: float | None
    ttfb: float | None
    inp: float | None
    cls: float | None
    channel: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    ref_origin: str | None = None
    revenue: float | None = None  # a purchase of that many euros, when set


_DIMS_CACHE: dict[tuple[tuple[str, str], ...], str] = {}


def _dims_json(dims: dict[str, str]) -> str:
    key = tuple(dims.items())
    text = _DIMS_CACHE.get(key)
    if text is None:
        text = _DIMS_CACHE[key] = orjson.dumps(dims).decode()
    return text


def beacon_rows(rng: random.Random, view: PageView, *, split: bool = True) -> Iterator[Record]:
    """The page view's beacons as the snippet sends them: with `split`, 1 to 3 of
    them, LCP, FCP and TTFB in the first, INP, CLS and the conversion in the
    last (sent when the page is hidden again); else one, sent when the page was
    hidden once. At the performance level only what measures the site's own
    performance is kept: no campaign, referrer, channel, conversion, nor any
    dimension but page_type."""
    beacons = rng.choices((1, 2, 3), (0.3, 0.55, 0.15))[0] if split else 1
    marketing = view.marketing
    dims = view.dims if marketing else {k: v for k, v in view.dims.items() if k == "page_type"}
    dims_json = _dims_json(dims) if dims else None
    converted = marketing and view.revenue is not None
    for seq in range(beacons):
        last = seq == beacons - 1
        row: list[Any] = [None] * len(COLUMNS)
        row[COL["site"]] = view.site
        row[COL["day"]] = view.t0.date()
        row[COL["pv"]] = view.pv
        row[COL["seq"]] = seq
        row[COL["sid"]] = view.sid
        row[COL["received_at"]] = view.t0 + dt.timedelta(seconds=2 + seq * rng.randrange(5, 600))
        row[COL["t0"]] = view.t0
        row[COL["consent"]] = "marketing" if marketing else "performance"
        row[COL["path"]] = view.path
        if marketing:
            row[COL["channel"]] = view.channel
            row[COL["utm_source"]] = view.utm_source
            row[COL["utm_medium"]] = view.utm_medium
            row[COL["utm_campaign"]] = view.utm_campaign
            row[COL["ref_origin"]] = view.ref_origin
        row[COL["release"]] = view.release
        row[COL["dims"]] = dims_json
        row[COL["device_class"]] = view.device_class
        row[COL["browser"]] = view.browser
        row[COL["os"]] = view.os
        row[COL["country"]] = view.country
        if seq == 0:
            row[COL["lcp"]], row[COL["fcp"]], row[COL["ttfb"]] = view.lcp, view.fcp, view.ttfb
        if last:
            row[COL["inp"]], row[COL["cls"]] = view.inp, view.cls
        row[COL["event_count"]] = 0
        if converted and last:
            row[COL["event_count"]] = 1
            row[COL["revenue"]] = view.revenue
            row[COL["events"]] = orjson.dumps(
                [{"name": "purchase", "value": view.revenue, "currency": "EUR"}]).decode()
        yield tuple(row)


async def copy_day(conn: asyncpg.Connection, day: dt.date, rows: Iterable[Record],
                   chunk: int = COPY_CHUNK) -> int:
    """COPY one day's beacons (its partitions and the next day's made first: a page
    view's later beacons may fall after midnight) in statements of about `chunk`
    beacons that end between page views, as the writer's batches mostly do.
    Returns the beacons stored."""
    await conn.execute("SELECT binome.ensure_beacon_partition($1)", day)
    await conn.execute("SELECT binome.ensure_beacon_partition($1)", day + dt.timedelta(days=1))
    pv = COL["pv"]
    stored = 0
    batch: list[Record] = []
    for row in rows:
        if len(batch) >= chunk and row[pv] != batch[-1][pv]:
            await _copy(conn, batch)
            stored += len(batch)
            batch = []
        batch.append(row)
    if batch:
        await _copy(conn, batch)
        stored += len(batch)
    return stored


async def _copy(conn: asyncpg.Connection, rows: list[Record]) -> None:
    await conn.copy_records_to_table("beacons", schema_name="binome", records=rows,
                                     columns=COLUMNS)
