"""Every figure of every rum view, for a known set of sessions posted to POST /beacon.

The expected figures are computed here, in Python, from the beacons as sent
and the contract's definitions (docs/beacon-format.md, "The beacon" and "Definitions"), not from SQL: a
fold of each page view's beacons, sessions with their landing page, then each
view's grouping. The same figures must come out while the days are live, once
they are rolled up, after late beacons change a rolled-up day, and once it is
rolled up again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from collector import PROJECT_ROOT, db
from collector.maintenance import maintain
from tests.conftest import (
    DESKTOP_UA,
    MOBILE_UA,
    Collector,
    _create_database,
    _drop_database,
    folded,
    wait_for,
)

SITE = "acme"
UA = {"mobile": MOBILE_UA, "desktop": DESKTOP_UA}
GOOD = {"lcp": 2500, "inp": 200, "cls": 0.1, "fcp": 1800, "ttfb": 800}
POOR = {"lcp": 4000, "inp": 500, "cls": 0.25}
MIDNIGHT = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(), dt.UTC)
TODAY = MIDNIGHT.date()
YESTERDAY = TODAY - dt.timedelta(days=1)


@dataclass
class Sent:
    """One beacon as posted, with what the collector must store for it."""
    pv: str
    seq: int
    sid: str | None
    t0: dt.datetime
    consent: str
    path: str
    query: str = ""
    ref: str = ""
    channel: str | None = None         # what enrich derives (contract section 5)
    utm_campaign: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    release: str | None = None
    device: str = "mobile"
    country: str | None = "FR"
    metrics: dict[str, float] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    page_type: str = "product"

    def __post_init__(self) -> None:
        # Ids are 8 to 64 characters (docs/beacon-format.md, "The beacon").
        self.pv = self.pv.ljust(8, "_")
        self.sid = self.sid.ljust(8, "_") if self.sid else None

    def body(self) -> dict[str, Any]:
        beacon: dict[str, Any] = {
            "v": 1, "consent": self.consent, "site": SITE, "pv": self.pv, "seq": self.seq,
            "t0": self.t0.timestamp() * 1000, "url": f"https://shop.example{self.path}{self.query}",
            "ref": self.ref, "dims": {"page_type": self.page_type, "ab_variant": "B"},
            "metrics": [{"name": k.upper(), "value": v} for k, v in self.metrics.items()],
            "events": self.events,
        }
        if self.sid:
            beacon["sid"] = self.sid
        if self.release:
            beacon["release"] = self.release
        return beacon

    @property
    def marketing(self) -> bool:
        return self.consent == "marketing"


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), dt.UTC)


def scenario() -> list[Sent]:
    """Campaigns and channels, two releases, multi-page sessions converting on a
    later page, a session across midnight, consent given and withdrawn."""
    y, t = YESTERDAY, TODAY
    email = dict(query="?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday",
                 channel="email", utm_source="newsletter", utm_medium="email",
                 utm_campaign="black-friday")
    paid = dict(query="?utm_source=google&utm_medium=cpc&utm_campaign=spring",
                channel="paid", utm_source="google", utm_medium="cpc", utm_campaign="spring")
    internal = dict(ref="https://shop.example/landing", channel="internal")
    r2, r3 = "2026.11.2", "2026.11.3"
    beacons = [
        # S1: black-friday e-mail, three pages, buys on the third (yesterday, r2).
        Sent("s1p1", 0, "S1", at(y, 10), "marketing", "/landing", **email, release=r2,
             metrics={"lcp": 1800, "fcp": 900, "ttfb": 200}),
        Sent("s1p1", 1, "S1", at(y, 10), "marketing", "/landing", **email, release=r2,
             metrics={"cls": 0.05, "inp": 150}),
        Sent("s1p2", 0, "S1", at(y, 10, 5), "marketing", "/product", **internal, release=r2,
             metrics={"lcp": 2600, "cls": 0.12, "inp": 250, "fcp": 1900, "ttfb": 850}),
        Sent("s1p3", 0, "S1", at(y, 10, 9), "marketing", "/thank-you", **internal, release=r2,
             metrics={"lcp": 2500, "cls": 0.1}, page_type="confirmation",
             events=[{"name": "purchase", "value": 49.9, "currency": "EUR"}]),
        # S2: paid spring campaign, one slow page: a bounce (desktop, DE, r2).
        Sent("s2p1", 0, "S2", at(y, 14), "marketing", "/landing", **paid, release=r2,
             device="desktop", country="DE",
             metrics={"lcp": 4500, "cls": 0.3, "fcp": 3100, "ttfb": 1900}),
        # S3: the same campaign link without consent: nothing marketing is kept.
        Sent("s3p1", 0, "S3", at(y, 15), "performance", "/landing", **paid, release=r2,
             metrics={"lcp": 3000, "cls": 0.02, "inp": 120}),
        Sent("s3p2", 0, "S3", at(y, 15, 2), "performance", "/product", **internal, release=r3,
             metrics={"lcp": 2200, "cls": 0.0, "inp": 600},
             events=[{"name": "purchase", "value": 10}]),
        # S4: from a search engine at 23:50, buys at 00:10 the next day.
        Sent("s4p1", 0, "S4", MIDNIGHT - dt.timedelta(minutes=10), "marketing", "/landing",
             ref="https://www.google.com/", channel="search", release=r2,
             metrics={"lcp": 900, "cls": 0.01, "inp": 80, "fcp": 500, "ttfb": 100}),
        Sent("s4p2", 0, "S4", MIDNIGHT + dt.timedelta(minutes=10), "marketing", "/checkout",
             **internal, release=r3, metrics={"lcp": 1200, "cls": 0.01, "inp": 90},
             events=[{"name": "purchase", "value": 20}]),
        # S5: consent given during the landing page view (seq 0 before the banner).
        Sent("s5p1", 0, "S5", at(t, 0, 30), "performance", "/landing", **email, release=r3,
             metrics={"lcp": 2100, "fcp": 1000}),
        Sent("s5p1", 1, "S5", at(t, 0, 30), "marketing", "/landing", **email, release=r3,
             metrics={"cls": 0.2, "inp": 210}),
        Sent("s5p1", 2, "S5", at(t, 0, 30), "marketing", "/landing", **email, release=r3,
             metrics={"cls": 0.26}),
        Sent("s5p2", 0, "S5", at(t, 0, 33), "marketing", "/product", **internal, release=r3,
             metrics={"lcp": 3900, "cls": 0.0, "inp": 180}),
        # S6: consent withdrawn on the second page, which then buys: not counted.
        Sent("s6p1", 0, "S6", at(t, 0, 40), "marketing", "/landing", **paid, release=r3,
             device="desktop", country=None, metrics={"lcp": 1500, "cls": 0.05}),
        Sent("s6p2", 0, "S6", at(t, 0, 41), "marketing", "/cart", **internal, release=r3,
             device="desktop", country=None, metrics={"lcp": 1600}),
        Sent("s6p2", 1, "S6", at(t, 0, 41), "performance", "/cart", **internal, release=r3,
             device="desktop", country=None, metrics={"cls": 0.07},
             events=[{"name": "purchase", "value": 99}]),
        # A page view without sid (its own session), direct, no release.
        Sent("nosid1", 0, None, at(t, 0, 50), "marketing", "/", metrics={"lcp": 700},
             channel="direct", device="desktop"),
    ]
    # Enough black-friday mobile page views today for a group of 50 or more.
    for n in range(52):
        beacons.append(Sent(f"bulk{n:02d}", 0, f"B{n // 2:02d}",
                            at(t, 0, 55) + dt.timedelta(seconds=n), "marketing",
                            "/landing" if n % 2 == 0 else "/product",
                            **(email if n % 2 == 0 else internal), release=r3,
                            metrics={"lcp": 1000 + 97 * n, "cls": round(0.004 * n, 3),
                                     "inp": 40 + 9 * n, "fcp": 600 + 50 * n,
                                     "ttfb": 100 + 31 * n},
                            events=[{"name": "signup"}] if n % 6 == 5 else []))
    return beacons


def late_beacons() -> list[Sent]:
    """After the rollup: S2 (a bounce yesterday) goes on today and buys; S1's
    product page reports a final, worse CLS."""
    return [
        Sent("s2p2", 0, "S2", at(TODAY, 1), "marketing", "/product",
             ref="https://shop.example/landing", channel="internal", release="2026.11.3",
             device="desktop", country="DE", metrics={"lcp": 2000, "cls": 0.01},
             events=[{"name": "purchase", "value": 15.5}]),
        Sent("s1p2", 1, "S1", at(YESTERDAY, 10, 5), "marketing", "/product",
             ref="https://shop.example/landing", channel="internal", release="2026.11.2",
             metrics={"cls": 0.3}),
    ]


# -- the expected figures, computed here ----------------------------------------

def percentile_cont(values: list[float], fraction: float = 0.75) -> float | None:
    """PostgreSQL's percentile_cont: interpolate between ranks floor(h), ceil(h)."""
    if not values:
        return None
    ordered = sorted(values)
    h = fraction * (len(ordered) - 1)
    low = math.floor(h)
    if math.ceil(h) == low:
        return ordered[low]
    return ordered[low] + (h - low) * (ordered[low + 1] - ordered[low])


def pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else 100.0 * part / whole


@dataclass
class PageView:
    pv: str
    sid: str
    day: dt.date
    t0: dt.datetime
    consent: str
    path: str
    channel: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    device_class: str
    country: str | None
    release: str | None
    dims: dict[str, str]
    metrics: dict[str, float | None]
    converted: bool | None
    revenue: float | None


def fold(beacons: list[Sent], stored_sid: dict[str, str]) -> dict[str, PageView]:
    by_pv: dict[str, list[Sent]] = defaultdict(list)
    for b in beacons:
        by_pv[b.pv].append(b)
    views = {}
    for pv, sent in by_pv.items():
        sent.sort(key=lambda b: b.seq)
        first, last = sent[0], sent[-1]
        marketing = last.marketing  # the latest decision rules
        mk = [b for b in sent if b.marketing]

        def latest(name: str, sent: list[Sent] = sent) -> float | None:
            reported = [b.metrics[name] for b in sent if name in b.metrics]
            return reported[-1] if reported else None

        channels = [b.channel for b in sent if b.marketing and b.channel]
        event_values = [e.get("value") for b in mk for e in b.events]
        views[pv] = PageView(
            pv=pv, sid=stored_sid[pv], day=first.t0.date(), t0=first.t0,
            consent=last.consent, path=first.path,
            channel=channels[0] if marketing and channels else None,
            utm_source=mk[0].utm_source if marketing and mk else None,
            utm_medium=mk[0].utm_medium if marketing and mk else None,
            utm_campaign=mk[0].utm_campaign if marketing and mk else None,
            device_class=first.device, country=first.country,
            release=next((b.release for b in reversed(sent) if b.release), None),
            dims={"page_type": last.page_type, "ab_variant": "B"} if marketing
            else {"page_type": last.page_type},
            metrics={m: latest(m) for m in ("lcp", "inp", "cls", "fcp", "ttfb")},
            converted=bool(event_values) if marketing else None,
            revenue=sum(v or 0 for v in event_values) if marketing else None,
        )
    return views


@dataclass
class Session:
    sid: str
    landing: PageView
    page_views: list[PageView]

    @property
    def channel(self) -> str:
        if self.landing.consent != "marketing":
            return "(no consent)"
        return self.landing.channel or "(none)"

    @property
    def campaign(self) -> str:
        if self.landing.consent != "marketing":
            return "(no consent)"
        return self.landing.utm_campaign or "(none)"

    @property
    def converted(self) -> bool:
        return any(p.converted for p in self.page_views)


def sessions_of(views: dict[str, PageView]) -> dict[str, Session]:
    members: dict[str, list[PageView]] = defaultdict(list)
    for view in views.values():
        members[view.sid].append(view)
    return {sid: Session(sid, min(pvs, key=lambda p: p.t0), pvs) for sid, pvs in members.items()}


Expected = dict[tuple[Any, ...], dict[str, Any]]


def expected_scorecard(views: dict[str, PageView]) -> Expected:
    sessions = sessions_of(views)
    groups: dict[tuple[Any, ...], list[PageView]] = defaultdict(list)
    for v in views.values():
        s = sessions[v.sid]
        channel = s.channel if v.consent == "marketing" else "(no consent)"
        campaign = s.campaign if v.consent == "marketing" else "(no consent)"
        groups[(v.day, SITE, channel, campaign, v.device_class, v.country or "(none)")].append(v)
    out = {}
    for key, pvs in groups.items():
        sids = {p.sid for p in pvs}
        values = {m: [p.metrics[m] for p in pvs if p.metrics[m] is not None]
                  for m in ("lcp", "inp", "cls", "fcp", "ttfb")}
        with_cwv = [p for p in pvs if p.metrics["lcp"] is not None and p.metrics["cls"] is not None]
        cwv_good = [p for p in with_cwv if p.metrics["lcp"] <= 2500 and p.metrics["cls"] <= 0.1
                    and (p.metrics["inp"] is None or p.metrics["inp"] <= 200)]
        no_consent = key[2] == "(no consent)"
        row: dict[str, Any] = {
            "page_views": len(pvs), "sessions": len(sids),
            "cwv_good_pct": pct(len(cwv_good), len(with_cwv)),
            "conversion_rate": None if no_consent else
            pct(sum(sessions[s].converted for s in sids), len(sids)),
            "revenue": None if no_consent else sum(p.revenue or 0 for p in pvs),
            "too_small": len(pvs) < 50,
        }
        for m, vals in values.items():
            row[f"{m}_p75"] = percentile_cont(vals)
            row[f"{m}_good_pct"] = pct(sum(v <= GOOD[m] for v in vals), len(vals))
            row[f"{m}_samples"] = len(vals)
        out[key] = row
    return out


def expected_perf_vs_conversion(views: dict[str, PageView]) -> Expected:
    buckets: dict[tuple[Any, ...], list[Session]] = defaultdict(list)
    for s in sessions_of(views).values():
        lcp = s.landing.metrics["lcp"]
        if s.landing.consent == "marketing" and lcp is not None:
            buckets[(SITE, min(int(lcp // 500 * 500), 10000))].append(s)
    return {key: {"sessions": len(ss), "conversions": sum(s.converted for s in ss),
                  "conversion_rate": pct(sum(s.converted for s in ss), len(ss)),
                  "bounce_rate": pct(sum(len(s.page_views) == 1 for s in ss), len(ss)),
                  "too_small": len(ss) < 50}
            for key, ss in buckets.items()}


def expected_releases(views: dict[str, PageView],
                      received: dict[str, list[dt.datetime]]) -> Expected:
    sessions = sessions_of(views)
    groups: dict[tuple[Any, ...], list[PageView]] = defaultdict(list)
    for v in views.values():
        groups[(SITE, v.release or "(none)")].append(v)
    out = {}
    for key, pvs in groups.items():
        with_cwv = [p for p in pvs if p.metrics["lcp"] is not None and p.metrics["cls"] is not None]
        cwv_good = [p for p in with_cwv if p.metrics["lcp"] <= 2500 and p.metrics["cls"] <= 0.1
                    and (p.metrics["inp"] is None or p.metrics["inp"] <= 200)]
        consented = {p.sid for p in pvs if p.consent == "marketing"}
        times = [min(received[p.pv]) for p in pvs]  # a page view is received with its first beacon
        out[key] = {
            "first_seen": min(times), "last_seen": max(times), "page_views": len(pvs),
            **{f"{m}_p75": percentile_cont([p.metrics[m] for p in pvs
                                             if p.metrics[m] is not None])
               for m in ("lcp", "inp", "cls")},
            "cwv_good_pct": pct(len(cwv_good), len(with_cwv)),
            "conversion_rate": pct(sum(sessions[s].converted for s in consented), len(consented))
            if consented else None,
            "too_small": len(pvs) < 50,
        }
    return out


# -- comparing ------------------------------------------------------------------

def same(actual: Any, expected: Any) -> bool:
    if expected is None or actual is None:
        return actual is expected
    if isinstance(expected, float) or isinstance(actual, Decimal | float):
        return float(actual) == pytest.approx(float(expected), rel=1e-12, abs=1e-12)
    return bool(actual == expected)


def assert_rows(actual: dict[Any, Any], expected: dict[Any, dict[str, Any]], view: str) -> None:
    assert set(actual) == set(expected), f"{view}: groups differ"
    for key, columns in expected.items():
        for column, value in columns.items():
            assert same(actual[key][column], value), \
                f"{view} {key} {column}: {actual[key][column]!r} != {value!r}"


@pytest.fixture(scope="module")
async def acme(server_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> AsyncIterator[tuple[str, Collector]]:
    url = await _create_database(server_url)
    conn = await db.connect(url)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        await db.add_site(conn, SITE, [])
    finally:
        await conn.close()
    collector = await asyncio.to_thread(
        Collector, url, Path(tmp_path_factory.mktemp("acme")) / "collector.log",
        batch_max_ms=20, rate_limit_per_minute=0, sites_refresh_seconds=1)
    yield url, collector
    collector.stop()
    await _drop_database(server_url, url)


def post_all(base: str, beacons: list[Sent], rng: random.Random) -> int:
    """Post in shuffled order (seqs out of order), resending some; returns posts."""
    posts = list(beacons) + rng.sample(beacons, min(5, len(beacons)))
    rng.shuffle(posts)
    with httpx.Client() as client:
        for b in posts:
            headers = {"Content-Type": "text/plain", "User-Agent": UA[b.device]}
            if b.country:
                headers["CF-IPCountry"] = b.country
            response = client.post(base + "/beacon", content=json.dumps(b.body()), headers=headers)
            assert response.status_code == 204, response.text
    return len(posts)


async def check_every_view(conn: asyncpg.Connection, beacons: list[Sent]) -> None:
    raw = await conn.fetch(
        "SELECT pv, seq, sid, received_at FROM binome.beacons WHERE site = $1 ORDER BY pv, seq",
        SITE)
    assert len(raw) == len(beacons)
    # Session identity as stored: the collector may pseudonymise sids.
    stored_sid = {r["pv"]: r["sid"] or r["pv"] for r in raw}
    received: dict[str, list[dt.datetime]] = defaultdict(list)
    for r in raw:
        received[r["pv"]].append(r["received_at"])
    views = fold(beacons, stored_sid)

    # rum.page_views_enriched
    rows = {r["pv"]: r for r in await conn.fetch(
        "SELECT * FROM rum.page_views_enriched WHERE site = $1", SITE)}
    assert set(rows) == set(views)
    for pv, v in views.items():
        r = rows[pv]
        expected = {"sid": v.sid, "day": v.day, "consent": v.consent, "path": v.path,
                    "channel": v.channel, "utm_source": v.utm_source, "utm_medium": v.utm_medium,
                    "utm_campaign": v.utm_campaign, "device_class": v.device_class,
                    "country": v.country, "release": v.release, "converted": v.converted,
                    "revenue": v.revenue, **v.metrics,
                    # to the minute (sql/views/10_page_views_enriched.sql)
                    "received_at": min(received[pv]).replace(second=0, microsecond=0)}
        for column, value in expected.items():
            assert same(r[column], value), f"page view {pv} {column}: {r[column]!r} != {value!r}"
        assert json.loads(r["dims"]) == v.dims, pv
        assert r["browser"] and r["os"]

    # rum.sessions
    sessions = sessions_of(views)
    rows = {r["sid"]: r for r in await conn.fetch(
        "SELECT * FROM rum.sessions WHERE site = $1", SITE)}
    assert set(rows) == set(sessions)
    for sid, s in sessions.items():
        r = rows[sid]
        assert (r["landing_pv"], r["channel"], r["utm_campaign"], r["page_views"], r["converted"],
                r["landing_lcp"], r["day"]) == (s.landing.pv, s.channel, s.campaign,
                                                len(s.page_views), s.converted,
                                                s.landing.metrics["lcp"], s.landing.day), sid

    # rum.scorecard_daily
    actual = {(r["day"], r["site"], r["channel"], r["utm_campaign"], r["device_class"],
               r["country"]): r
              for r in await conn.fetch("SELECT * FROM rum.scorecard_daily WHERE site = $1", SITE)}
    assert_rows(actual, expected_scorecard(views), "scorecard_daily")

    # rum.perf_vs_conversion
    actual = {(r["site"], r["lcp_bucket_ms"]): r for r in await conn.fetch(
        "SELECT * FROM rum.perf_vs_conversion WHERE site = $1", SITE)}
    assert_rows(actual, expected_perf_vs_conversion(views), "perf_vs_conversion")

    # rum.release_comparison
    actual = {(r["site"], r["release"]): r for r in await conn.fetch(
        "SELECT * FROM rum.release_comparison WHERE site = $1", SITE)}
    assert_rows(actual, expected_releases(views, received), "release_comparison")


@pytest.fixture(scope="module")
def sent() -> Iterator[dict[str, list[Sent]]]:
    yield {"beacons": scenario()}


async def test_every_figure_live_then_rolled_up(
    acme: tuple[str, Collector], sent: dict[str, list[Sent]]
) -> None:
    url, collector = acme
    beacons = sent["beacons"]
    rng = random.Random(1)
    conn = await asyncpg.connect(url)
    try:
        posts = await asyncio.to_thread(post_all, collector.url, beacons, rng)
        await wait_for(conn, "SELECT count(*) FROM binome.beacons", expect=len(beacons))
        await folded(conn)
        await check_every_view(conn, beacons)  # live

        # rum.ingest_health: every post received and accepted, resends not written.
        # The writer sends its counters at most once a second: wait for all of them.
        await wait_for(conn, "SELECT sum(received) FROM rum.ingest_health WHERE site = $1",
                       SITE, expect=posts)
        await wait_for(conn, "SELECT sum(rows_written) FROM rum.ingest_health WHERE site = $1",
                       SITE, expect=len(beacons))
        totals = await conn.fetchrow(
            "SELECT sum(received) AS received, sum(accepted) AS accepted,"
            " sum(rejected) AS rejected, sum(rows_written) AS rows_written,"
            " min(minute) AS first, max(minute) AS last FROM rum.ingest_health WHERE site = $1",
            SITE)
        assert (totals["received"], totals["accepted"], totals["rejected"],
                totals["rows_written"]) == (posts, posts, 0, len(beacons))
        assert totals["first"] >= MIDNIGHT and totals["last"] <= dt.datetime.now(dt.UTC)

        report = await maintain(conn, retention_months=25, rollup_lag_days=1,
                                today=TODAY + dt.timedelta(days=2))
        assert report is not None
        assert set(report.rolled_up) == {(SITE, YESTERDAY), (SITE, TODAY)}
        assert await conn.fetchval("SELECT count(*) FROM binome.live_page_views") == 0
        await check_every_view(conn, beacons)  # from rollups
    finally:
        await conn.close()


async def test_late_beacons_for_rolled_up_days(
    acme: tuple[str, Collector], sent: dict[str, list[Sent]]
) -> None:
    url, collector = acme
    late = late_beacons()
    beacons = sent["beacons"] + late
    conn = await asyncpg.connect(url)
    try:
        await asyncio.to_thread(post_all, collector.url, late, random.Random(2))
        await wait_for(conn, "SELECT count(*) FROM binome.beacons", expect=len(beacons))
        await folded(conn)
        dirty = {(r["site"], r["day"]) for r in await conn.fetch(
            "SELECT site, day FROM binome.rollup_dirty")}
        assert dirty == {(SITE, YESTERDAY), (SITE, TODAY)}
        await check_every_view(conn, beacons)  # dirty days computed live

        report = await maintain(conn, retention_months=25, rollup_lag_days=1,
                                today=TODAY + dt.timedelta(days=2))
        assert report is not None and set(report.rolled_up) == dirty
        assert await conn.fetchval("SELECT count(*) FROM binome.rollup_dirty") == 0
        await check_every_view(conn, beacons)
    finally:
        await conn.close()


async def test_report_reads_the_same_figures(
    acme: tuple[str, Collector], sent: dict[str, list[Sent]]
) -> None:
    """binome report: per channel and campaign, sums of the scorecard and p75s from
    the histograms (within a bin of the exact p75 over the same page views)."""
    from rich.console import Console

    from collector.report import fetch_scorecard, print_report

    url, _ = acme
    beacons = sent["beacons"] + late_beacons()
    conn = await asyncpg.connect(url)
    try:
        stored_sid = {r["pv"]: r["sid"] or r["pv"] for r in await conn.fetch(
            "SELECT DISTINCT ON (pv) pv, sid FROM binome.beacons ORDER BY pv, seq DESC")}
        rows = {(r.channel, r.campaign): r
                for r in await fetch_scorecard(conn, site=SITE, days=2, today=TODAY)}
    finally:
        await conn.close()
    views = fold(beacons, stored_sid)
    sessions = sessions_of(views)
    expected: dict[tuple[str, str], list[PageView]] = defaultdict(list)
    for v in views.values():
        s = sessions[v.sid]
        key = (s.channel, s.campaign) if v.consent == "marketing" else ("(no consent)",) * 2
        expected[key].append(v)
    assert set(rows) == set(expected)
    widths = {"lcp": 100, "inp": 10, "cls": 0.01}
    for key, pvs in expected.items():
        row = rows[key]
        assert row.page_views == len(pvs)
        for metric, width in widths.items():
            values = [p.metrics[metric] for p in pvs if p.metrics[metric] is not None]
            assert row.samples(metric) == len(values)
            exact = percentile_cont(values)
            if exact is None:
                assert row.p75(metric) is None
            else:
                assert abs(row.p75(metric) - exact) <= width + 1e-9, (key, metric)
    bulk = rows[("email", "black-friday")]
    assert bulk.page_views >= 50
    # rum.p75_from_histogram, the analysts' aggregate, reads the same as the report.
    conn = await asyncpg.connect(url)
    try:
        in_sql = {(r["channel"], r["utm_campaign"], r["metric"]): r["p75"]
                  for r in await conn.fetch(
            "SELECT channel, utm_campaign, metric,"
            "       rum.p75_from_histogram(bin_lower, bin_upper, page_views) AS p75"
            " FROM rum.scorecard_histograms WHERE site = $1"
            " GROUP BY channel, utm_campaign, metric", SITE)}
    finally:
        await conn.close()
    for (channel, campaign, metric), p75 in in_sql.items():
        if metric in widths:
            assert p75 == pytest.approx(rows[(channel, campaign)].p75(metric), rel=1e-12)

    console = Console(record=True, width=220)
    await print_report(url, site=SITE, days=2, console=console, today=TODAY)
    text = console.export_text()
    assert "black-friday" in text and "(no consent)" in text and "too small" in text
    assert "2026.11.2" in text and "2026.11.3" in text
