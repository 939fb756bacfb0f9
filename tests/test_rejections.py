"""Refused beacons explain themselves (issue 24): a collector refusing beacons
logs each kind once a minute however many come, keeps their counts in
rum.ingest_rejections, and names in its 403 what it refused."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import asyncpg
import httpx
import pytest

from collector import PROJECT_ROOT, db, maintenance, rejections
from collector.rejections import KEYS_PER_MINUTE, LOGGED_KEYS_PER_MINUTE, OTHER, Rejections
from tests.conftest import MOBILE_UA, make_beacon, wait_for


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


async def test_a_collector_refusing_a_wrong_origin_and_an_unknown_site(
        fresh_database: str, start_collector: Any) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        await db.add_site(conn, "shop", ["https://shop.fr"])
        collector = start_collector(fresh_database, batch_max_ms=20, rate_limit_per_minute=0,
                                    store_automated=True, sites_refresh_seconds=1)
        with httpx.Client(base_url=collector.url,
                          headers={"content-type": "text/plain", "user-agent": MOBILE_UA}) as c:
            for _ in range(120):
                answer = c.post("/beacon", headers={"origin": "https://www.shop.fr"},
                                content=json.dumps(make_beacon(
                                    site="shop", url="https://www.shop.fr/p/1")))
                assert answer.status_code == 403
            # The 403 names the origin it received and the site.
            assert answer.json() == {
                "error": "origin_not_allowed",
                "detail": "origin https://www.shop.fr is not allowed for site shop"}
            for _ in range(30):
                answer = c.post("/beacon", headers={"origin": "https://www.shop.fr"},
                                content=json.dumps(make_beacon(
                                    site="shpo", url="https://www.shop.fr/")))
                assert answer.status_code == 403
            assert answer.json() == {"error": "unknown_site",
                                     "detail": "site shpo is not registered"}
            # An origin header that is not one is answered, logged and kept bounded.
            answer = c.post("/beacon", headers={"origin": "https://" + "x" * 5000},
                            content=json.dumps(make_beacon(site="shop")))
            assert answer.status_code == 403
            assert len(answer.json()["detail"]) < 200

        query = ("SELECT string_agg(concat_ws(' ', reason, site, origin, refused), ', '"
                 " ORDER BY reason) FROM rum.ingest_rejections WHERE origin = $1")
        rows = await wait_for(conn, query, "https://www.shop.fr",
                              expect="origin_not_allowed shop https://www.shop.fr 120, "
                                     "unknown_site shpo https://www.shop.fr 30")
        assert rows == ("origin_not_allowed shop https://www.shop.fr 120, "
                        "unknown_site shpo https://www.shop.fr 30")
        assert await conn.fetchval("SELECT max(length(origin)) FROM rum.ingest_rejections"
                                   ) <= rejections.MAX_ORIGIN_CHARS

        refused = _events(collector.log_path.read_text(), "beacon refused")
        by_kind = [(e["reason"], e["site"], e["origin"]) for e in refused]
        # One line per kind: 120 and 30 refusals within a minute (a minute's
        # turn may split them in two windows: then two lines, never more).
        assert 1 <= by_kind.count(("origin_not_allowed", "shop", "https://www.shop.fr")) <= 2
        assert 1 <= by_kind.count(("unknown_site", "shpo", "https://www.shop.fr")) <= 2
        assert len(refused) <= 6
    finally:
        await conn.close()


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
