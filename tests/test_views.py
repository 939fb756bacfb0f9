"""rum.page_views_enriched: beacons posted over HTTP, folded into one row per page view."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx

from tests.conftest import MOBILE_UA, folded, make_beacon, wait_for


def post(base: str, beacon: dict[str, Any]) -> None:
    response = httpx.post(base + "/beacon", content=json.dumps(beacon),
                          headers={"Content-Type": "text/plain", "User-Agent": MOBILE_UA})
    assert response.status_code == 204, response.text


async def page_view(conn: asyncpg.Connection, pv: str, beacons: int) -> asyncpg.Record:
    await wait_for(conn, "SELECT count(*) FROM binome.beacons WHERE pv = $1", pv, expect=beacons)
    await folded(conn)
    return await conn.fetchrow("SELECT * FROM rum.page_views_enriched WHERE pv = $1", pv)


async def test_out_of_order_seq_gives_the_final_values(
    live_server: str, conn: asyncpg.Connection
) -> None:
    first = make_beacon(seq=0, metrics=[
        {"name": "LCP", "value": 1800}, {"name": "CLS", "value": 0.01},
        {"name": "FCP", "value": 900}, {"name": "TTFB", "value": 200}], events=[])
    pv, sid = first["pv"], first["sid"]
    second = make_beacon(pv=pv, sid=sid, seq=1, metrics=[
        {"name": "CLS", "value": 0.05}, {"name": "INP", "value": 150}], events=[])
    third = make_beacon(pv=pv, sid=sid, seq=2, metrics=[
        {"name": "CLS", "value": 0.12}, {"name": "INP", "value": 320}],
        events=[{"name": "purchase", "value": 20.5, "currency": "EUR"}])
    for beacon in (third, first, second):  # arrival order is not seq order
        post(live_server, beacon)
    row = await page_view(conn, pv, 3)
    assert (row["lcp"], row["cls"], row["inp"], row["fcp"], row["ttfb"]) == (
        1800, 0.12, 320, 900, 200)
    assert row["sid"] == sid and row["consent"] == "marketing"
    assert row["converted"] is True and float(row["revenue"]) == 20.5
    assert row["channel"] == "email" and row["utm_campaign"] == "black-friday"
    assert row["path"] == "/p/42" and row["device_class"] == "mobile"
    assert row["day"] is not None and row["received_at"] is not None


async def test_page_view_without_sid_is_its_own_session(
    live_server: str, conn: asyncpg.Connection
) -> None:
    beacon = make_beacon()
    del beacon["sid"]
    post(live_server, beacon)
    row = await page_view(conn, beacon["pv"], 1)
    assert row["sid"] == beacon["pv"]


async def test_performance_level_page_view_has_no_marketing_columns(
    live_server: str, conn: asyncpg.Connection
) -> None:
    beacon = make_beacon(consent="performance")
    post(live_server, beacon)
    row = await page_view(conn, beacon["pv"], 1)
    assert row["consent"] == "performance"
    for column in ("channel", "utm_source", "utm_medium", "utm_campaign", "converted", "revenue"):
        assert row[column] is None, column
    assert json.loads(row["dims"]) == {"page_type": "product"}
    assert row["lcp"] == 2140.5


async def test_consent_given_during_the_page_view(
    live_server: str, conn: asyncpg.Connection
) -> None:
    """seq 0 before the banner was answered, seq 1 after: the latest decision rules."""
    first = make_beacon(consent="performance", url="https://shop.example/p/42", events=[])
    second = make_beacon(pv=first["pv"], sid=first["sid"], seq=1, metrics=[])
    post(live_server, first)
    post(live_server, second)
    row = await page_view(conn, first["pv"], 2)
    assert row["consent"] == "marketing"
    assert row["utm_campaign"] == "black-friday" and row["converted"] is True


async def test_no_marketing_dimension_without_consent_is_null(
    live_server: str, conn: asyncpg.Connection
) -> None:
    beacon = make_beacon(url="https://shop.example/", ref="", events=[], dims={})
    post(live_server, beacon)
    row = await page_view(conn, beacon["pv"], 1)
    assert row["utm_campaign"] is None and row["utm_source"] is None
    assert row["channel"] == "direct" and row["converted"] is False
    assert row["dims"] is None
