"""rum.metric_coverage and rum.client_losses (issue 22) against hand counts, the
coverage lines of `binome report`, and the `lost` field of a beacon posted over
HTTP stored at both consent levels."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import asyncpg
import httpx
import pytest

from rich.console import Console

from collector import db
from collector.coverage import METRICS, MIN_PAGE_VIEWS, coverage_line, summarize
from collector.report import print_report
from tests.conftest import MOBILE_UA, make_beacon, stored

DAY = dt.date(2032, 2, 29)  # a day no other test writes
SITE = "coverage"
# Days far from today, in a site of this module's own: removed after it.
pytestmark = pytest.mark.usefixtures("sites_removed_after")
INSERT = (
    "INSERT INTO binome.beacons (site, day, pv, seq, sid, received_at, consent, path,"
    " device_class, browser, lcp, inp, cls, fcp, ttfb, client_losses)"
    " VALUES ($1, $2, $3, $4, $3, $5, 'performance', '/', $6, $7, $8, $9, $10, $11, $12, $13)"
)


async def _insert(conn: asyncpg.Connection, pv: str, seq: int, device_class: str,
                  browser: str | None, lcp: float | None = None, inp: float | None = None,
                  cls: float | None = None, fcp: float | None = None,
                  ttfb: float | None = None, lost: dict[str, int] | None = None) -> None:
    received = dt.datetime.combine(DAY, dt.time(9, seq), tzinfo=dt.UTC)
    await conn.execute(INSERT, SITE, DAY, pv, seq, received, device_class, browser,
                       lcp, inp, cls, fcp, ttfb, None if lost is None else json.dumps(lost))


async def _fixture(conn: asyncpg.Connection) -> None:
    await db.add_site(conn, SITE, [])
    await conn.execute("SELECT binome.ensure_beacon_partition($1)", DAY)
    if await conn.fetchval("SELECT count(*) FROM binome.beacons WHERE site = $1", SITE):
        return
    # Chrome on a phone: every metric, INP and CLS in a later beacon.
    await _insert(conn, "coverage-pv1", 0, "mobile", "Chrome Mobile", lcp=1800, fcp=900, ttfb=200)
    await _insert(conn, "coverage-pv1", 1, "mobile", "Chrome Mobile", inp=120, cls=0.02,
                  lost={"refused": 2})
    # Chrome, a route of a single-page application: LCP and CLS, no TTFB.
    await _insert(conn, "coverage-pv2", 0, "mobile", "Chrome Mobile", lcp=900, cls=0,
                  lost={"refused": 1, "oversize": 1})
    # Safari: no INP, no CLS.
    await _insert(conn, "coverage-pv3", 0, "mobile", "Mobile Safari", lcp=2500, fcp=1200, ttfb=300)
    # Firefox on a desktop, hidden before it painted: nothing.
    await _insert(conn, "coverage-pv4", 0, "desktop", "Firefox")
    # An unknown browser, TTFB only.
    await _insert(conn, "coverage-pv5", 0, "unknown", None, ttfb=150)


async def test_metric_coverage_matches_a_hand_count(conn: asyncpg.Connection) -> None:
    await _fixture(conn)
    rows = await conn.fetch(
        "SELECT browser, device_class, page_views, with_lcp, with_inp, with_cls, with_fcp,"
        " with_ttfb FROM rum.metric_coverage WHERE site = $1 AND day = $2"
        " ORDER BY browser NULLS LAST", SITE, DAY)
    assert [tuple(r) for r in rows] == [
        ("Chrome Mobile", "mobile", 2, 2, 1, 2, 1, 1),
        ("Firefox", "desktop", 1, 0, 0, 0, 0, 0),
        ("Mobile Safari", "mobile", 1, 1, 0, 0, 1, 1),
        (None, "unknown", 1, 0, 0, 0, 0, 1),
    ]


async def test_client_losses_sum_per_day_site_and_reason(conn: asyncpg.Connection) -> None:
    await _fixture(conn)
    rows = await conn.fetch(
        "SELECT reason, lost FROM rum.client_losses WHERE site = $1 AND day = $2 ORDER BY reason",
        SITE, DAY)
    assert [tuple(r) for r in rows] == [("oversize", 1), ("refused", 3)]


async def test_analysts_read_both_views(conn: asyncpg.Connection) -> None:
    for view in ("rum.metric_coverage", "rum.client_losses"):
        assert await conn.fetchval(
            "SELECT has_table_privilege('binome_analyst', $1, 'SELECT')", view), view


def _post(base: str, beacon: dict[str, Any]) -> None:
    response = httpx.post(base + "/beacon", content=json.dumps(beacon),
                          headers={"Content-Type": "text/plain", "User-Agent": MOBILE_UA})
    assert response.status_code == 204, response.text


async def test_lost_counts_are_stored_at_both_consent_levels(
    live_server: str, conn: asyncpg.Connection
) -> None:
    for consent in ("performance", "marketing"):
        beacon = make_beacon(consent=consent, lost={"refused": 3, "oversize": 0})
        _post(live_server, beacon)
        [row] = await stored(conn, beacon["pv"])
        losses = row["client_losses"]
        assert json.loads(losses) == {"refused": 3, "oversize": 0}


async def test_lost_counts_out_of_bounds_are_refused(live_server: str) -> None:
    for lost in ({"refused": 10_001}, {"oversize": -1}, {"refused": 1.5}, {"refused": "2"}):
        response = httpx.post(live_server + "/beacon", content=json.dumps(make_beacon(lost=lost)),
                              headers={"Content-Type": "text/plain", "User-Agent": MOBILE_UA})
        assert response.status_code == 400, lost
        assert response.json()["detail"][0]["field"].startswith("lost."), response.text


def test_a_browser_does_not_report_a_metric_only_on_enough_page_views() -> None:
    def row(browser: str, page_views: int, **measured: int) -> dict[str, Any]:
        return {"browser": browser, "page_views": page_views,
                **{m: measured.get(m, page_views) for m in METRICS}}

    summary = summarize([row("Chrome", 60), row("Mobile Safari", 30, inp=0, cls=0),
                         row("Firefox", MIN_PAGE_VIEWS - 1, cls=0)])
    assert summary["lcp"] == {"page_views": 109, "measured": 109, "pct": 100.0,
                              "missing_browsers": []}
    assert summary["inp"]["measured"] == 79
    assert summary["inp"]["missing_browsers"] == ["Mobile Safari"]
    assert summary["cls"]["missing_browsers"] == ["Mobile Safari"], "19 page views: chance"
    assert coverage_line("inp", summary["inp"]) == (
        "INP measured on 72 % of page views; Mobile Safari does not report INP")
    assert coverage_line("ttfb", summarize([])["ttfb"]) == "TTFB: no page views"


async def test_report_prints_a_coverage_line_per_metric(
    database_url: str, conn: asyncpg.Connection
) -> None:
    await _fixture(conn)
    console = Console(record=True, width=200)
    await print_report(database_url, site=SITE, days=1, console=console, today=DAY)
    text = console.export_text()
    assert "LCP measured on 60 % of page views" in text  # 3 of 5
    assert "INP measured on 20 % of page views" in text
    assert "CLS measured on 40 % of page views" in text
    assert "FCP measured on 40 % of page views" in text
    assert "TTFB measured on 60 % of page views" in text
