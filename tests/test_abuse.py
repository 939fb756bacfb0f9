"""Abuse controls over real HTTP (SECURITY.md): the rate limit with and without a
trusted proxy header, automated traffic counted but not stored, the caps per
page view and per session."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import asyncpg
import httpx

from collector import db
from tests.conftest import DESKTOP_UA, MOBILE_UA, make_beacon, wait_for


def post(base: str, beacon: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(base + "/beacon", content=json.dumps(beacon),
                      headers={"Content-Type": "text/plain", "User-Agent": MOBILE_UA, **headers})


def metric(base: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name + (f"{{{wanted}}}" if wanted else "")) + r" ([0-9.e+]+)"
    found = re.search(pattern, httpx.get(base + "/metrics").text)
    return float(found.group(1)) if found else 0.0


def test_without_a_trusted_proxy_header_forwarded_addresses_are_ignored(
    start_collector: Any
) -> None:
    """Off by default: a client cannot escape its bucket by inventing X-Forwarded-For."""
    collector = start_collector(rate_limit_per_minute=5)
    answers = [post(collector.url, make_beacon(), **{"X-Forwarded-For": f"198.51.100.{i}"})
               for i in range(7)]
    assert [a.status_code for a in answers] == [204] * 5 + [429] * 2
    assert answers[-1].json()["error"] == "rate_limited"
    assert int(answers[-1].headers["retry-after"]) > 0


def test_with_a_trusted_proxy_header_each_client_has_its_bucket(start_collector: Any) -> None:
    """Behind one proxy that appends the client's address to X-Forwarded-For."""
    collector = start_collector(rate_limit_per_minute=5, trusted_proxy_header="X-Forwarded-For",
                                trusted_proxy_hops=1)
    alice = {"X-Forwarded-For": "198.51.100.1"}
    answers = [post(collector.url, make_beacon(), **alice).status_code for _ in range(6)]
    assert answers == [204] * 5 + [429]
    # Bob, behind the same proxy, is not held back by Alice.
    assert post(collector.url, make_beacon(), **{"X-Forwarded-For": "198.51.100.2"}
                ).status_code == 204
    # What Alice writes in the header herself lands left of what the proxy appends.
    for forged in ("203.0.113.1", "203.0.113.2, 10.0.0.1", "garbage"):
        spoofed = {"X-Forwarded-For": f"{forged}, 198.51.100.1"}
        assert post(collector.url, make_beacon(), **spoofed).status_code == 429


async def test_bots_and_headless_browsers_are_counted_not_stored(
    start_collector: Any, conn: asyncpg.Connection
) -> None:
    await db.add_site(conn, "bot-watch", [])
    collector = start_collector(store_automated=False)  # the default outside tests
    automated = {
        "bot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "headless": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    "HeadlessChrome/131.0.0.0 Safari/537.36",
        "curl": "curl/8.5.0",
    }
    before = {reason: metric(collector.url, "binome_beacons_rejected_total", reason=reason)
              for reason in ("bot", "headless", "no_user_agent")}
    unstored = []
    for ua in automated.values():
        beacon = make_beacon(site="bot-watch")
        assert post(collector.url, beacon, **{"User-Agent": ua}).status_code == 204
        unstored.append(beacon["pv"])
    # No User-Agent header at all, over a raw socket (HTTP clients add one).
    beacon = make_beacon(site="bot-watch")
    body = json.dumps(beacon).encode()
    with socket.create_connection(("127.0.0.1", collector.port)) as sock:
        sock.sendall(b"POST /beacon HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 204")
    unstored.append(beacon["pv"])
    person = make_beacon(site="bot-watch")
    assert post(collector.url, person, **{"User-Agent": DESKTOP_UA}).status_code == 204

    await wait_for(conn, "SELECT count(*) FROM binome.beacons WHERE pv = $1", person["pv"],
                   expect=1)
    assert await conn.fetchval("SELECT count(*) FROM binome.beacons WHERE pv = ANY($1)",
                               unstored) == 0
    after = {reason: metric(collector.url, "binome_beacons_rejected_total", reason=reason)
             for reason in before}
    assert {k: after[k] - before[k] for k in after} == {
        "bot": 2, "headless": 1, "no_user_agent": 1}
    # ... and in the per-minute counters analysts read (rum.ingest_health).
    health = "SELECT (sum(received), sum(accepted), sum(rejected), sum(rows_written))::text" \
             " FROM rum.ingest_health WHERE site = 'bot-watch'"
    assert await wait_for(conn, health, expect="(5,1,4,1)") == "(5,1,4,1)"


async def test_caps_per_page_view_and_per_session(
    start_collector: Any, conn: asyncpg.Connection
) -> None:
    collector = start_collector(max_beacons_per_page_view=3, max_beacons_per_session=5)
    page_view = make_beacon()
    answers = [post(collector.url, dict(page_view, seq=seq)) for seq in range(5)]
    assert [a.status_code for a in answers] == [204, 204, 204, 429, 429]
    assert answers[-1].json()["error"] == "page_view_cap"
    # seq past the cap is refused whatever this process has seen
    assert post(collector.url, make_beacon(seq=3)).json()["error"] == "page_view_cap"

    sid = make_beacon()["sid"]
    session = [post(collector.url, make_beacon(sid=sid)).status_code for _ in range(7)]
    assert session == [204] * 5 + [429] * 2
    assert post(collector.url, make_beacon(sid=sid)).json()["error"] == "session_cap"

    assert await wait_for(conn, "SELECT count(*) FROM binome.beacons WHERE pv = $1",
                          page_view["pv"], expect=3) == 3
    assert metric(collector.url, "binome_beacons_rejected_total", reason="session_cap") == 3
