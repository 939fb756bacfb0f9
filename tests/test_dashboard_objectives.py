"""The scorecard page's Objectives band (issue 21): GET /dashboard/data carries
what the last `binome objective check` stored (rum.objective_results), and the
page, in Debian's Chromium, shows each objective's status in words, its value
and when it was checked, or when an objective not checked yet will be, in
English and French."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from collector import dashboard, db, objectives
from collector.maintenance import OBJECTIVES_LOCK
from tests.conftest import DASHBOARD_TOKEN, Collector
from tests.synthetic import insert_beacons
from tests.test_dashboard import open_dashboard, screenshot_path, shown
from tests.test_objectives import page_view

STATUS_WORDS = {"en-US": {"missed": "missed", "met": "met", "too few": "too few to tell"},
                "fr-FR": {"missed": "manqué", "met": "atteint", "too few": "trop peu de mesures"}}
# The band's collector checks the objectives this often (but see checks_held).
CHECK_MINUTES = 30


@pytest.fixture(scope="module")
def band_site(database_url: str) -> str:
    """A site of its own: 300 page views over the last three days, LCPs around
    3.2 s, CLS 0.01; objectives LCP <= 2500 (missed), CLS <= 0.1 (met), and one
    on product pages, which it has none of (too few), each checked by `add`;
    and one written straight into binome.objectives, never checked (pending)."""
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
            await conn.execute("INSERT INTO binome.objectives (site, name, metric, target)"
                               " VALUES ($1, $2, 'cwv_good_pct', 75)", name, f"{name}-pending")
        finally:
            await conn.close()

    asyncio.run(load())
    return name


@pytest.fixture(scope="module")
async def checks_held(database_url: str) -> AsyncIterator[None]:
    """The objective checks' advisory lock (collector/maintenance.py), held for
    the module: the collector's periodic check skips its rounds, so the
    pending objective stays unchecked while the page shows it."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("SELECT pg_advisory_lock($1)", OBJECTIVES_LOCK)
    yield
    await conn.close()


@pytest.fixture(scope="module")
def band_collector(database_url: str, band_site: str, checks_held: None,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    started = Collector(database_url, tmp_path_factory.mktemp("band") / "collector.log",
                        dashboard_token=DASHBOARD_TOKEN, objective_check_minutes=CHECK_MINUTES)
    yield started
    started.stop()



async def _stored(database_url: str, name: str) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM rum.objective_results WHERE name = $1", name)
        assert row is not None
        return row
    finally:
        await conn.close()


async def test_the_data_carry_the_stored_figures(band_collector: Collector, band_site: str,
                                                 database_url: str) -> None:
    response = httpx.get(band_collector.url + "/dashboard/data", params={"site": band_site},
                         headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"}, timeout=60)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["objective_check_minutes"] == CHECK_MINUTES
    by_name = {o["name"]: o for o in data["objectives"]}
    lcp = by_name[f"{band_site}-lcp"]
    assert (lcp["status"], lcp["n"], lcp["target"], lcp["at_most"]) == ("missed", 300, 2500, True)
    assert lcp["value_low"] < lcp["value"] < lcp["value_high"]
    assert len(lcp["weeks"]) == 8 and sum(w["n"] for w in lcp["weeks"]) == 300
    stored = await _stored(database_url, f"{band_site}-lcp")
    assert dt.datetime.fromisoformat(lcp["checked_at"]) == stored["checked_at"]
    assert lcp["value"] == stored["value"]
    assert by_name[f"{band_site}-product"]["scope"] == {"page_type": "product"}
    assert by_name[f"{band_site}-product"]["status"] == "too few"
    pending = by_name[f"{band_site}-pending"]
    assert (pending["checked_at"], pending["status"], pending["value"]) == (None, None, None)
    assert pending["weeks"] == []


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
        row = await _stored(database_url, f"{band_site}-{suffix}")
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
    # When the figures were computed: the check's time, in UTC.
    checked_at = (await _stored(database_url, f"{band_site}-lcp"))["checked_at"]
    checked = await page.text(f"{lcp_item} .objective-checked")
    assert checked.startswith("vérifié" if french else "checked"), checked
    assert checked.endswith(f"{checked_at.astimezone(dt.UTC):%H:%M} UTC"), checked
    # Never checked yet: says so, and within how long the collector checks it.
    pending = f"#objectives li[data-objective='{band_site}-pending']"
    assert await page.text(f"{pending} .objective-status") == (
        "pas encore vérifié" if french else "not checked yet")
    assert await page.text(f"{pending} .objective-checked") == (
        f"chiffres d’ici {CHECK_MINUTES} min (la prochaine vérification)" if french
        else f"figures within {CHECK_MINUTES} min (the next check)")
    await page.page.screenshot(path=screenshot_path(f"dashboard-objectives-{locale[:2]}.png"),
                               full_page=False)
    assert page.errors == []


async def test_the_band_reads_what_the_last_check_stored(database_url: str,
                                                          conn: asyncpg.Connection) -> None:
    """Page views arriving after a check change rum.objectives (live) but not
    the band, until the next check stores the new figures."""
    site = "stored" + secrets.token_hex(3)
    await conn.execute("INSERT INTO binome.sites (site) VALUES ($1)", site)
    await insert_beacons(conn, [page_view(site, f"{site}-{i}", dt.datetime.now(dt.UTC).date(),
                                          lcp=3000, seconds=i) for i in range(60)],
                         random.Random(3))
    await objectives.add(conn, site, "lcp_p75", "2500", f"{site}-lcp", [])
    pool = await db.create_pool(database_url)
    try:
        today = dt.datetime.now(dt.UTC).date()
        filters = dashboard.Filters(site, today - dt.timedelta(days=13), today)
        [before] = (await dashboard.scorecard(pool, filters))["objectives"]
        assert (before["status"], before["n"], before["value"]) == ("missed", 60, 3000)
        await insert_beacons(conn, [page_view(site, f"{site}-late-{i}", today, lcp=1000,
                                              seconds=100 + i) for i in range(540)],
                             random.Random(4))
        live = await conn.fetchrow("SELECT n, status FROM rum.objectives WHERE name = $1",
                                   f"{site}-lcp")
        assert (live["n"], live["status"]) == (600, "met")
        [unchanged] = (await dashboard.scorecard(pool, filters))["objectives"]
        assert unchanged == before
        await objectives.check(conn, None)
        [after] = (await dashboard.scorecard(pool, filters))["objectives"]
        assert (after["status"], after["n"]) == ("met", 600)
        assert after["checked_at"] > before["checked_at"]
    finally:
        await pool.close()
        await conn.execute("DELETE FROM binome.objectives WHERE site = $1", site)


async def test_the_bands_statement_reads_the_objectives_table_only(
        conn: asyncpg.Connection) -> None:
    """A read by the key of binome.objectives, whatever the traffic: no page
    view (nor any other table) in its plan."""
    plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + objectives.DASHBOARD_QUERY.replace(
        "$1", "'shop'"))
    plan = orjson.loads(plan) if isinstance(plan, str) else plan

    def relations(node: dict[str, Any]) -> set[str]:
        found = {node["Relation Name"]} if "Relation Name" in node else set()
        for child in node.get("Plans", []):
            found |= relations(child)
        return found

    assert relations(plan[0]["Plan"]) == {"objectives"}
