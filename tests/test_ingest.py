"""POST /beacon over real HTTP against a collector on a real PostgreSQL:
every status code of docs/beacon-format.md, "Routes", and what ends up stored."""

from __future__ import annotations

import json
import socket
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import DESKTOP_UA, MOBILE_UA, make_beacon, stored, wait_for


def post(base: str, beacon: Any, *, content_type: str = "text/plain;charset=UTF-8",
         headers: dict[str, str] | None = None) -> httpx.Response:
    body = beacon if isinstance(beacon, bytes) else json.dumps(beacon).encode()
    return httpx.post(base + "/beacon", content=body,
                      headers={"Content-Type": content_type, "User-Agent": MOBILE_UA,
                               **(headers or {})})


async def test_accepted_beacon_is_stored_and_enriched(
    live_server: str, conn: asyncpg.Connection
) -> None:
    beacon = make_beacon()
    response = post(live_server, beacon, headers={"CF-IPCountry": "fr"})
    assert response.status_code == 204, response.text
    [row] = await stored(conn, beacon["pv"])
    assert row["site"] == "demo" and row["seq"] == 0 and row["sid"] == beacon["sid"]
    assert row["path"] == "/p/42"
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == (
        "newsletter", "email", "black-friday")
    assert row["channel"] == "email"
    assert row["ref_origin"] == "https://www.google.com"
    assert row["device_class"] == "mobile" and row["os"] == "iOS"
    assert row["country"] == "FR"
    assert row["lcp"] == 2140.5 and row["cls"] == 0.04 and row["inp"] is None
    assert row["release"] == "2026.11.3"
    assert json.loads(row["dims"]) == {"page_type": "product", "ab_variant": "B"}
    assert row["event_count"] == 1 and float(row["revenue"]) == 49.9


async def test_application_json_is_accepted(live_server: str, conn: asyncpg.Connection) -> None:
    beacon = make_beacon()
    assert post(live_server, beacon, content_type="application/json").status_code == 204
    assert len(await stored(conn, beacon["pv"])) == 1


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "", "text/html"])
async def test_other_content_types_are_415(
    live_server: str, conn: asyncpg.Connection, content_type: str
) -> None:
    beacon = make_beacon()
    response = post(live_server, beacon, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert await conn.fetchval("SELECT count(*) FROM binome.beacons WHERE pv = $1",
                               beacon["pv"]) == 0


async def test_malformed_json_is_400(live_server: str) -> None:
    response = post(live_server, b'{"v": 1, "site": ')
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


async def test_invalid_beacon_is_400_naming_the_fields(
    live_server: str, conn: asyncpg.Connection
) -> None:
    beacon = make_beacon(seq=-1, dims={"Bad Key": "x"})
    response = post(live_server, beacon)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_beacon"
    fields = {d["field"] for d in body["detail"]}
    assert "seq" in fields and any(f.startswith("dims") for f in fields)
    assert await conn.fetchval("SELECT count(*) FROM binome.beacons WHERE pv = $1",
                               beacon["pv"]) == 0


async def test_unknown_site_is_403(live_server: str, conn: asyncpg.Connection) -> None:
    beacon = make_beacon(site="nobody-registered-this")
    response = post(live_server, beacon)
    assert response.status_code == 403
    assert response.json()["error"] == "unknown_site"


async def test_origins_of_a_restricted_site(live_server: str, conn: asyncpg.Connection) -> None:
    # "shop" accepts https://shop.example only (tests/conftest.py).
    allowed = make_beacon(site="shop", url="https://shop.example/cart")
    assert post(live_server, allowed, headers={"Origin": "https://shop.example"}).status_code == 204
    other = make_beacon(site="shop", url="https://shop.example/cart")
    response = post(live_server, other, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.json()["error"] == "origin_not_allowed"
    # Without an Origin header (a server-side sender), the page URL must be allowed.
    foreign_page = make_beacon(site="shop", url="https://evil.example/")
    assert post(live_server, foreign_page).status_code == 403
    await stored(conn, allowed["pv"])
    assert await conn.fetchval("SELECT count(*) FROM binome.beacons WHERE pv = ANY($1)",
                               [other["pv"], foreign_page["pv"]]) == 0


async def test_any_origin_for_a_site_without_origins(live_server: str) -> None:
    response = post(live_server, make_beacon(), headers={"Origin": "https://anything.example"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://anything.example"


def test_body_over_the_limit_is_413(live_server: str) -> None:
    beacon = make_beacon(release="x" * 70_000)
    response = post(live_server, beacon)
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_a_10_mb_body_is_refused_without_being_read(live_server: str) -> None:
    """The server answers 413 after the headers, while the client still has 10 MB to send."""
    host, port = live_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /beacon HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 10485760\r\n\r\n" + b"{" * 1000
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_chunked_body_over_the_limit_is_413(live_server: str) -> None:
    def chunks() -> Any:
        for _ in range(100):
            yield b" " * 4096

    response = httpx.post(live_server + "/beacon", content=chunks(),
                          headers={"Content-Type": "text/plain"})
    assert response.status_code == 413


def test_preflight(live_server: str) -> None:
    response = httpx.options(live_server + "/beacon", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()


async def test_rate_limit_answers_429(start_collector: Any) -> None:
    collector = start_collector(rate_limit_per_minute=3)
    answers = [post(collector.url, make_beacon()).status_code for _ in range(5)]
    assert answers[:3] == [204, 204, 204]
    assert answers[3:] == [429, 429]
    response = post(collector.url, make_beacon())
    assert response.json()["error"] == "rate_limited" and "retry-after" in response.headers


async def test_full_queue_answers_503_with_retry_after(start_collector: Any) -> None:
    # A writer that never flushes within the test (huge batch, long wait) and a queue of 2.
    collector = start_collector(queue_max=2, batch_max_rows=1000, batch_max_ms=60_000)
    answers = [post(collector.url, make_beacon()) for _ in range(4)]
    assert [a.status_code for a in answers] == [204, 204, 503, 503]
    assert answers[2].json()["error"] == "overloaded"
    assert int(answers[2].headers["retry-after"]) > 0


async def test_resent_beacon_is_stored_once(live_server: str, conn: asyncpg.Connection) -> None:
    beacon = make_beacon()
    for _ in range(3):
        assert post(live_server, beacon).status_code == 204
    changed = dict(beacon, release="changed-on-resend")
    assert post(live_server, changed).status_code == 204
    rows = await stored(conn, beacon["pv"])
    await wait_for(conn, "SELECT 1 FROM binome.beacons WHERE pv = $1 AND release <> $2",
                   beacon["pv"], beacon["release"], timeout=0.5)
    rows = await conn.fetch("SELECT release FROM binome.beacons WHERE pv = $1", beacon["pv"])
    assert [r["release"] for r in rows] == ["2026.11.3"]


async def test_secrets_in_the_url_are_nowhere_in_the_database(
    live_server: str, conn: asyncpg.Connection
) -> None:
    beacon = make_beacon(
        url="https://shop.example/account?email=jean.dupont%40example.fr&token=s3cr3tT0k3n"
            "&utm_campaign=spring#access_token=fr4gm3nt",
        ref="https://mail.example/inbox?session=r3fs3cr3t",
    )
    assert post(live_server, beacon).status_code == 204
    [row] = await stored(conn, beacon["pv"])
    assert row["path"] == "/account" and row["utm_campaign"] == "spring"
    dump = json.dumps([dict(r) for r in await conn.fetch(
        "SELECT * FROM binome.beacons WHERE pv = $1", beacon["pv"])], default=str)
    for secret in ("jean.dupont", "example.fr", "s3cr3tT0k3n", "fr4gm3nt", "r3fs3cr3t", "inbox"):
        assert secret not in dump


async def test_performance_consent_stores_nothing_marketing(
    live_server: str, conn: asyncpg.Connection
) -> None:
    beacon = make_beacon(consent="performance")
    assert post(live_server, beacon).status_code == 204
    [row] = await stored(conn, beacon["pv"])
    assert row["consent"] == "performance"
    assert row["path"] == "/p/42"
    for column in ("utm_source", "utm_medium", "utm_campaign", "ref_origin", "channel",
                   "events", "revenue"):
        assert row[column] is None, column
    assert json.loads(row["dims"]) == {"page_type": "product"}
    assert row["lcp"] == 2140.5  # performance itself is measured for every visitor
    assert row["release"] == "2026.11.3"


async def test_a_beacon_without_consent_stores_nothing_marketing(
    live_server: str, conn: asyncpg.Connection
) -> None:
    """Private by default (contract section 5, issue 24): a hand-written sender
    that forgets `consent` is stored at `performance`, campaign, referrer,
    dimensions but page_type and events dropped."""
    beacon = make_beacon()
    del beacon["consent"]
    assert post(live_server, beacon).status_code == 204
    [row] = await stored(conn, beacon["pv"])
    assert row["consent"] == "performance"
    for column in ("utm_source", "utm_medium", "utm_campaign", "ref_origin", "channel",
                   "events", "revenue"):
        assert row[column] is None, column
    assert row["event_count"] == 0
    assert json.loads(row["dims"]) == {"page_type": "product"}
    assert row["lcp"] == 2140.5


async def test_desktop_user_agent(live_server: str, conn: asyncpg.Connection) -> None:
    beacon = make_beacon()
    httpx.post(live_server + "/beacon", content=json.dumps(beacon),
               headers={"Content-Type": "text/plain", "User-Agent": DESKTOP_UA})
    [row] = await stored(conn, beacon["pv"])
    assert (row["device_class"], row["browser"], row["os"]) == ("desktop", "Chrome", "Windows")


async def test_receive_time_is_the_collectors_not_the_batch_write(
    start_collector: Any, conn: asyncpg.Connection
) -> None:
    collector = start_collector(batch_max_ms=1500, batch_max_rows=1000)
    first, second = make_beacon(), make_beacon()
    import time as _time

    started = _time.time()
    post(collector.url, first)
    _time.sleep(0.6)
    post(collector.url, second)
    elapsed = _time.time() - started
    await stored(conn, second["pv"])
    times = await conn.fetch(
        "SELECT pv, received_at FROM binome.beacons WHERE pv = ANY($1)", [first["pv"], second["pv"]])
    by_pv = {r["pv"]: r["received_at"] for r in times}
    gap = (by_pv[second["pv"]] - by_pv[first["pv"]]).total_seconds()
    # Written in one batch, yet received 0.6 s apart: each keeps its own arrival
    # time (on a busy machine the posts themselves may take longer).
    assert 0.55 < gap <= elapsed + 0.05


def test_ingest_counters_reach_the_view(live_server: str) -> None:
    # Checked through the view in tests/test_views.py; here: the metrics endpoint.
    post(live_server, make_beacon())
    post(live_server, b"{")
    text = httpx.get(live_server + "/metrics").text
    assert "binome_beacons_accepted_total" in text
    assert 'binome_beacons_rejected_total{reason="malformed_json"}' in text
    assert "binome_queue_depth" in text and "binome_write_seconds_bucket" in text


def test_nothing_a_client_sends_is_a_500(live_server: str) -> None:
    bodies: list[bytes] = [
        b"", b"null", b"[]", b"0", b'"x"', b"{}" * 1000, b"\x00" * 100,
        json.dumps(make_beacon(dims={"page_type": "\u0000"})).encode(),
        json.dumps(make_beacon(url="https://" + "a" * 3000)).encode(),
        json.dumps(make_beacon(metrics=[{"name": "LCP", "value": 1e308}])).encode(),
        b'{"v":1,"site":"demo","pv":"abcdefgh","seq":0,"url":"https://a.b/","dims":{"a":"\\ud800"}}',
    ]
    for body in bodies:
        for content_type in ("text/plain", "application/json"):
            response = post(live_server, body, content_type=content_type)
            assert 400 <= response.status_code < 500, (body[:50], response.status_code)
            assert "error" in response.json()
