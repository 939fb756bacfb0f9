"""Refused beacons explain themselves (issue 24): a collector refusing beacons
logs each kind once a minute however many come, keeps their counts in
rum.ingest_rejections, and names in its 403 what it refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from collector import PROJECT_ROOT, db, maintenance, rejections, store
from collector.rejections import KEYS_PER_MINUTE, LOGGED_KEYS_PER_MINUTE, OTHER, Rejections
from tests.conftest import (
    DASHBOARD_TOKEN,
    MOBILE_UA,
    Collector,
    _create_database,
    _drop_database,
    make_beacon,
    wait_for,
)
from tests.test_dashboard import screenshot_path


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # a minute's start

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [{"event": r.getMessage(), **{k: getattr(r, k) for k in
                                         ("reason", "site", "origin", "refused",
                                          "not_logged_before") if hasattr(r, k)}}
            for r in caplog.records if r.name == rejections.__name__]


def test_one_line_per_kind_a_minute_and_the_rest_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, rejections.__name__)
    clock = Clock()
    refused = Rejections(clock)
    for _ in range(500):
        refused.note("origin_not_allowed", "shop", "https://www.shop.fr")
    assert _lines(caplog) == [{"event": "beacon refused", "reason": "origin_not_allowed",
                               "site": "shop", "origin": "https://www.shop.fr",
                               "not_logged_before": 0}]
    # The next minute's first refusal tells the 499 the last minute did not log.
    clock.now += 60
    caplog.clear()
    for _ in range(10):
        refused.note("origin_not_allowed", "shop", "https://www.shop.fr")
    assert _lines(caplog) == [{"event": "beacon refused", "reason": "origin_not_allowed",
                               "site": "shop", "origin": "https://www.shop.fr",
                               "not_logged_before": 499}]
    # A kind that stops: its 9 untold refusals are told at the end of the next minute.
    caplog.clear()
    clock.now += 60
    refused.take()
    assert _lines(caplog) == []
    clock.now += 60
    refused.take()
    assert _lines(caplog) == [{"event": "beacons refused, not logged one by one",
                               "reason": "origin_not_allowed", "site": "shop",
                               "origin": "https://www.shop.fr", "refused": 9}]


def test_many_kinds_are_bounded_in_lines_and_rows(caplog: pytest.LogCaptureFixture) -> None:
    """Junk origins under attack: a bounded number of log lines and of rows a minute."""
    caplog.set_level(logging.WARNING, rejections.__name__)
    clock = Clock()
    refused = Rejections(clock)
    for i in range(1000):
        refused.note("unknown_site", f"junk{i}", f"https://{i}.example")
    assert len(_lines(caplog)) == LOGGED_KEYS_PER_MINUTE
    clock.now += 60
    taken = refused.take()
    assert [line["refused"] for line in _lines(caplog)
            if line["event"].startswith("beacons refused, not logged: too many")] == [
        1000 - LOGGED_KEYS_PER_MINUTE]
    assert len(taken) == KEYS_PER_MINUTE + 1
    assert (int(clock.now // 60) - 1, "unknown_site", OTHER, OTHER,
            1000 - KEYS_PER_MINUTE) in taken


def test_client_text_is_bounded_and_printable() -> None:
    clock = Clock()
    refused = Rejections(clock)
    refused.note("rate_limited", None, "https://x.example\n\x00" + "a" * 500)
    refused.note("rate_limited", None, None)
    [(_, _, site, origin, _), (_, _, _, no_origin, _)] = refused.take()
    assert site == rejections.NOT_READ and no_origin == rejections.NO_ORIGIN
    assert len(origin) == rejections.MAX_ORIGIN_CHARS and origin.isprintable()
    assert origin.startswith("https://x.example??")


def _events(log_text: str, message: str) -> list[dict[str, Any]]:
    events = []
    for line in log_text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == message:
            events.append(event)
    return events


@dataclass
class Refusing:
    collector: Collector
    database_url: str
    answers: dict[str, httpx.Response]


EVIL_ORIGIN = "https://<b>x</b>.example"


@pytest.fixture(scope="module")
def refusing(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refusing]:
    """A collector of its own, on a database of its own: site `shop` accepts
    https://shop.fr only and `blog` any origin. A page of https://www.shop.fr
    sends 120 beacons for shop and 30 for `shpo`, not registered; 5 come for
    `shpo` with an Origin header that is markup, 1 for shop with a huge one and
    1 with an empty one."""
    url = asyncio.run(_create_database(server_url))

    async def prepare() -> None:
        conn = await asyncpg.connect(url)
        try:
            await db.migrate(conn, PROJECT_ROOT / "sql")
            await db.add_site(conn, "shop", ["https://shop.fr"])
            await db.add_site(conn, "blog", [])
        finally:
            await conn.close()

    asyncio.run(prepare())
    collector = Collector(url, tmp_path_factory.mktemp("refusing") / "collector.log",
                          batch_max_ms=20, rate_limit_per_minute=0, store_automated=True,
                          sites_refresh_seconds=1, dashboard_token=DASHBOARD_TOKEN)
    answers = {}
    with httpx.Client(base_url=collector.url,
                      headers={"content-type": "text/plain", "user-agent": MOBILE_UA}) as c:
        for site, origin, times in (("shop", "https://www.shop.fr", 120),
                                    ("shpo", "https://www.shop.fr", 30),
                                    ("shpo", EVIL_ORIGIN, 5),
                                    ("shop", "https://" + "x" * 5000, 1),
                                    ("shop", "", 1)):
            for _ in range(times):
                answer = c.post("/beacon", headers={"origin": origin}, content=json.dumps(
                    make_beacon(site=site, url="https://www.shop.fr/p/1")))
                assert answer.status_code == 403
            answers[f"{site} {origin[:30]}"] = answer
    try:
        yield Refusing(collector, url, answers)
    finally:
        collector.stop()
        asyncio.run(_drop_database(server_url, url))


def test_403s_name_the_origin_and_the_site(refusing: Refusing) -> None:
    assert refusing.answers["shop https://www.shop.fr"].json() == {
        "error": "origin_not_allowed",
        "detail": "origin https://www.shop.fr is not allowed for site shop"}
    assert refusing.answers["shpo https://www.shop.fr"].json() == {
        "error": "unknown_site", "detail": "site shpo is not registered"}
    # An origin that is client text of any length is answered bounded.
    huge = refusing.answers["shop https://" + "x" * 22].json()
    assert huge["error"] == "origin_not_allowed" and len(huge["detail"]) < 160
    # An empty Origin is none of the site's.
    assert refusing.answers["shop "].json() == {
        "error": "origin_not_allowed", "detail": "origin (none) is not allowed for site shop"}


async def test_the_view_counts_each_kind(refusing: Refusing) -> None:
    conn = await asyncpg.connect(refusing.database_url)
    try:
        expected = ("origin_not_allowed shop https://www.shop.fr 120, "
                    "unknown_site shpo https://www.shop.fr 30")
        query = ("SELECT string_agg(concat_ws(' ', reason, site, origin, refused), ', '"
                 " ORDER BY reason) FROM rum.ingest_rejections WHERE origin = $1")
        assert await wait_for(conn, query, "https://www.shop.fr", expect=expected) == expected
        assert await conn.fetchval("SELECT max(length(origin)) FROM rum.ingest_rejections"
                                   ) == rejections.MAX_ORIGIN_CHARS
    finally:
        await conn.close()


def test_each_kind_is_logged_once_a_minute(refusing: Refusing) -> None:
    refused = _events(refusing.collector.log_path.read_text(), "beacon refused")
    by_kind = [(e["reason"], e["site"], e["origin"]) for e in refused]
    # 120 and 30 refusals within a minute (the turn of a minute may split them
    # in two windows: then two lines, never more).
    assert 1 <= by_kind.count(("origin_not_allowed", "shop", "https://www.shop.fr")) <= 2
    assert 1 <= by_kind.count(("unknown_site", "shpo", "https://www.shop.fr")) <= 2
    assert len(refused) <= 8, refused


def _data(refusing: Refusing, site: str) -> dict[str, Any]:
    answer = httpx.get(refusing.collector.url + "/dashboard/data", params={"site": site},
                       headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def _counted(refusing: Refusing) -> None:
    conn = await asyncpg.connect(refusing.database_url)
    try:
        await wait_for(conn, "SELECT sum(refused) FROM rum.ingest_rejections", expect=157)
    finally:
        await conn.close()


async def test_dashboard_data_has_the_site_s_refusals_and_unknown_sites(
        refusing: Refusing) -> None:
    await _counted(refusing)
    shop = {(r["reason"], r["site"], r["origin"], r["refused"])
            for r in _data(refusing, "shop")["rejections"]}
    assert ("origin_not_allowed", "shop", "https://www.shop.fr", 120) in shop
    assert ("unknown_site", "shpo", "https://www.shop.fr", 30) in shop
    # Another site's page: the unknown site's refusals (a set-up problem of no
    # site), not shop's.
    blog = {(r["reason"], r["site"]) for r in _data(refusing, "blog")["rejections"]}
    assert blog == {("unknown_site", "shpo")}


@pytest.mark.browser
@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
async def test_the_page_shows_the_refusals_and_their_fix(
        browser: Any, refusing: Refusing, locale: str) -> None:
    await _counted(refusing)
    context = await browser.new_context(locale=locale)
    try:
        page = await context.new_page()
        query = httpx.QueryParams({"token": DASHBOARD_TOKEN, "site": "shop"})
        await page.goto(f"{refusing.collector.url}/dashboard?{query}")
        await page.wait_for_selector("body[data-state=ready]", timeout=60_000)
        lines = await page.locator("#rejections li").all_text_contents()
        if locale == "en-US":
            assert await page.locator("#rejections strong").text_content() == (
                "Beacons refused in the last hour")
            assert ("120 beacons from https://www.shop.fr refused: origin not allowed for site"
                    " shop — binome site add shop --origin https://www.shop.fr") in lines
            assert ("30 beacons from https://www.shop.fr refused: site shpo is not registered"
                    " — binome site add shpo") in lines
            # One beacon is one (the empty Origin's), and its origin gets no command.
            assert ("1 beacon from (none) refused: origin not allowed for site shop") in lines
        else:
            assert ("120 envois de https://www.shop.fr refusés : origine non autorisée pour le"
                    " site shop — binome site add shop --origin https://www.shop.fr") in lines
        commands = await page.locator("#rejections code").all_text_contents()
        assert "binome site add shop --origin https://www.shop.fr" in commands
        # No command for an origin header that is none (cut to its bound here).
        assert not any("xxxx" in command for command in commands)
        # A client's markup is shown as text, never parsed.
        assert any(EVIL_ORIGIN in line for line in lines)
        assert await page.locator("#rejections b").count() == 0
        await page.screenshot(path=str(screenshot_path(f"refused-banner-{locale}.png")))
    finally:
        await context.close()


async def test_maintenance_forgets_refusals_after_seven_days(fresh_database: str) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        await conn.executemany(
            "INSERT INTO binome.ingest_rejections (site, minute, reason, origin, refused)"
            " VALUES ($1, $2, 'unknown_site', '(none)', 1)",
            [("old", now - dt.timedelta(days=7, minutes=1)), ("recent", now - dt.timedelta(days=6))])
        report = await maintenance.maintain(conn, retention_months=25, rollup_lag_days=1)
        assert report is not None and report.rejections_deleted == 1
        assert await conn.fetchval("SELECT string_agg(site, ',') FROM rum.ingest_rejections"
                                   ) == "recent"
    finally:
        await conn.close()


async def test_the_writer_role_adds_refusals_and_may_not_delete_them(fresh_database: str) -> None:
    """Least privilege (deploy/roles.sql's binome_writer): the collector's upsert,
    twice for the same key, and retention only through the definer's function."""
    conn = await asyncpg.connect(fresh_database)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        minute = int(dt.datetime.now(dt.UTC).timestamp() // 60)
        await conn.execute("SET ROLE binome_writer")
        for _ in range(2):
            await store.write_rejections(conn, [(minute, "unknown_site", "shpo", "(none)", 2)])
        assert await conn.fetchval("SELECT refused FROM binome.ingest_rejections") == 4
        assert await conn.fetchval("SELECT binome.forget_ingest_rejections()") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM binome.ingest_rejections")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE binome.ingest_rejections SET site = 'x'")
        await conn.execute("RESET ROLE")
        await conn.execute("SET ROLE binome_analyst")
        assert await conn.fetchval("SELECT sum(refused) FROM rum.ingest_rejections") == 4
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM binome.ingest_rejections")
    finally:
        await conn.close()
