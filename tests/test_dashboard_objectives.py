"""The scorecard page's Objectives band (issue 21): GET /dashboard/data carries
rum.objectives and rum.objective_weeks, and the page, in Debian's Chromium,
shows each objective's status in words and its value, in English and French."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from collector import dashboard, db, objectives
from tests.conftest import Collector, chromium
from tests.synthetic import insert_beacons
from tests.test_dashboard import TOKEN, open_dashboard, screenshot_path, shown
from tests.test_objectives import page_view

STATUS_WORDS = {"en-US": {"missed": "missed", "met": "met", "too few": "too few to tell"},
                "fr-FR": {"missed": "manqué", "met": "atteint", "too few": "trop peu de mesures"}}


@pytest.fixture(scope="module")
def band_site(database_url: str) -> str:
    """A site of its own: 300 page views over the last three days, LCPs around
    3.2 s, CLS 0.01; objectives LCP <= 2500 (missed), CLS <= 0.1 (met), and one
    on product pages, which it has none of (too few)."""
    name = "band" + secrets.token_hex(3)

    async def load() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("INSERT INTO binome.sites (site) VALUES ($1)", name)
            today = dt.datetime.now(dt.UTC).date()
            rng = random.Random(7)
            rows = [page_view(name, f"{name}-{i}", today - dt.timedelta(days=i % 3),
                              lcp=round(rng.gauss(3200, 300), 1), seconds=i) for i in range(300)]
            await insert_beacons(conn, rows, rng)
            await objectives.add(conn, name, "lcp_p75", "2500", f"{name}-lcp", [])
            await objectives.add(conn, name, "cls_p75", "0.1", f"{name}-cls", [])
            await objectives.add(conn, name, "lcp_p75", "2500", f"{name}-product",
                                 ["page_type=product"])
        finally:
            await conn.close()

    asyncio.run(load())
    return name


@pytest.fixture(scope="module")
def band_collector(database_url: str, band_site: str,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    started = Collector(database_url, tmp_path_factory.mktemp("band") / "collector.log",
                        dashboard_token=TOKEN, objective_check_minutes=0)
    yield started
    started.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


def test_the_data_carry_the_objectives_rows(band_collector: Collector, band_site: str) -> None:
    response = httpx.get(band_collector.url + "/dashboard/data", params={"site": band_site},
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert response.status_code == 200, response.text
    by_name = {o["name"]: o for o in response.json()["objectives"]}
    lcp = by_name[f"{band_site}-lcp"]
    assert (lcp["status"], lcp["n"], lcp["target"], lcp["at_most"]) == ("missed", 300, 2500, True)
    assert lcp["value_low"] < lcp["value"] < lcp["value_high"]
    assert len(lcp["weeks"]) == 8 and sum(w["n"] for w in lcp["weeks"]) == 300
    assert by_name[f"{band_site}-product"]["scope"] == {"page_type": "product"}
    assert by_name[f"{band_site}-product"]["status"] == "too few"


async def _figures(database_url: str, name: str) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM rum.objectives WHERE name = $1", name)
        assert row is not None
        return row
    finally:
        await conn.close()


@pytest.mark.browser
@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
async def test_the_band_shows_status_and_value(browser: Any, band_collector: Collector,
                                               band_site: str, database_url: str,
                                               locale: str) -> None:
    page = await open_dashboard(browser, band_collector, band_site, locale=locale)
    french = locale.startswith("fr")
    assert await page.text("#objectives h2") == ("Objectifs partagés" if french
                                                 else "Shared objectives")
    # The band comes first, above the consent notice and the tiles.
    assert await page.page.evaluate(
        "document.querySelector('#figures').firstElementChild.id") == "objectives"
    for suffix, kind in (("lcp", "lcp"), ("cls", "cls"), ("product", "lcp")):
        row = await _figures(database_url, f"{band_site}-{suffix}")
        item = f"#objectives li[data-objective='{band_site}-{suffix}']"
        assert await page.text(f"{item} .objective-status") == STATUS_WORDS[locale][row["status"]]
        value = shown(kind, row["value"])
        value = value.replace(".", ",") if french else value
        assert (await page.text(f"{item} .objective-value")).startswith(value)
        target = {"lcp": "2.5\u00a0s", "cls": "0.1"}[kind]
        target = target.replace(".", ",") if french else target
        assert await page.text(f"{item} .objective-target") == (
            f"{'cible' if french else 'target'} ≤ {target}")
    lcp_item = f"#objectives li[data-objective='{band_site}-lcp']"
    interval = await page.text(f"{lcp_item} .objective-interval")
    assert interval.startswith("intervalle à 95 %" if french else "95 % interval")
    # The trend: 8 weeks, a line drawn for the weeks with page views.
    weeks = (await page.page.get_attribute(f"{lcp_item} .objective-trend", "data-weeks")).split(" ")
    assert len(weeks) == 8 and weeks[-1] != ""
    assert await page.page.locator(f"{lcp_item} .sparkline polyline.target").count() == 1
    await page.page.screenshot(path=screenshot_path(f"dashboard-objectives-{locale[:2]}.png"),
                               full_page=False)
    assert page.errors == []


async def test_a_slow_objectives_statement_leaves_the_rest_of_the_page(
        database_url: str, band_site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """rum.objectives computes from page views: past its own time limit the data
    come without the band's figures (null, which the page words), not as an error."""
    pool = await db.create_pool(database_url)
    try:
        today = dt.datetime.now(dt.UTC).date()
        filters = dashboard.Filters(band_site, today - dt.timedelta(days=13), today)
        monkeypatch.setattr(dashboard, "OBJECTIVES_TIMEOUT", "1ms")
        answer = await dashboard.scorecard(pool, filters)
        assert answer["objectives"] is None
        assert answer["period"]["current"]["page_views"] == 300
        monkeypatch.setattr(dashboard, "OBJECTIVES_TIMEOUT", "10s")
        answer = await dashboard.scorecard(pool, filters)
        assert [o["status"] for o in answer["objectives"]] == ["met", "missed", "too few"]
    finally:
        await pool.close()
