"""binome serve answers POST /beacon from the HTTP parser's callbacks
(collector/server.py); every other server runs the ASGI route
(collector/ingest.py). Both must give the same answers, keep the order of
pipelined requests and count what they refuse alike."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import MOBILE_UA, Collector, make_beacon, stored

BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture(scope="module")
def both(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        dict[str, Collector]]:
    """The same settings under plain uvicorn (the ASGI route) and binome serve."""
    settings: dict[str, Any] = dict(rate_limit_per_minute=0, batch_max_ms=20,
                                    max_body_bytes=4096, country_headers="cf-ipcountry")
    directory = tmp_path_factory.mktemp("paths")
    collectors = {"asgi": Collector(database_url, directory / "asgi.log", serve=False,
                                    **settings),
                  "fast": Collector(database_url, directory / "fast.log", serve=True,
                                    **settings)}
    yield collectors
    for collector in collectors.values():
        collector.stop()


def request(body: bytes, *, content_type: bytes = b"text/plain",
            user_agent: bytes = MOBILE_UA.encode(), extra: bytes = b"", version: bytes = b"1.1",
            length: bool = True) -> bytes:
    framing = (b"Content-Length: " + str(len(body)).encode() + b"\r\n" if length else
               b"Transfer-Encoding: chunked\r\n")
    if not length:
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return (b"POST /beacon HTTP/" + version + b"\r\nHost: collector\r\nContent-Type: "
            + content_type + b"\r\nUser-Agent: " + user_agent + b"\r\n" + framing + extra
            + b"\r\n" + body)


def beacon_body(**overrides: Any) -> bytes:
    # Both servers get the same bytes: the second stores nothing (a resend), and
    # is answered 204 all the same.
    return json.dumps(make_beacon(**overrides)).encode()


def exchange(collector: Collector, data: bytes, answers: int = 1) -> list[bytes]:
    """Send raw bytes on one connection; the answers, their Date headers blanked."""
    with socket.create_connection(("127.0.0.1", collector.port), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        found: list[bytes] = []
        while len(found) < answers:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            found, received = _split_answers(found, received)
    return [re.sub(rb"(?m)^date: [^\r]*\r\n", b"", answer) for answer in found]


def _split_answers(found: list[bytes], buffer: bytes) -> tuple[list[bytes], bytes]:
    while b"\r\n\r\n" in buffer:
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = re.search(rb"(?mi)^content-length: (\d+)", head)
        size = int(length.group(1)) if length else 0
        if len(rest) < size:
            break
        found.append(head + b"\r\n\r\n" + rest[:size])
        buffer = rest[size:]
    return found, buffer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


CASES = {
    "accepted": lambda: request(beacon_body()),
    "accepted with an origin": lambda: request(
        beacon_body(), extra=b"Origin: https://anything.example\r\ncf-ipcountry: fr\r\n"),
    "accepted, chunked": lambda: request(beacon_body(), length=False),
    "accepted over HTTP/1.0": lambda: request(beacon_body(), version=b"1.0"),
    "accepted, then closed": lambda: request(beacon_body(), extra=b"Connection: close\r\n"),
    "expecting 100-continue": lambda: request(beacon_body(), extra=b"Expect: 100-continue\r\n"),
    "with a query string": lambda: request(beacon_body()).replace(b"/beacon", b"/beacon?v=1", 1),
    "from a bot": lambda: request(beacon_body(), user_agent=BOT_UA.encode()),
    "malformed JSON": lambda: request(b'{"v": 1, "site": '),
    "an invalid field": lambda: request(beacon_body(seq=-1)),
    "unsupported media type": lambda: request(beacon_body(), content_type=b"image/png"),
    "declared too large": lambda: request(beacon_body(release="x" * 5000)),
    "too large, chunked": lambda: request(beacon_body(release="x" * 5000), length=False),
    "unknown site": lambda: request(beacon_body(site="nobody-registered-this")),
    "origin not allowed": lambda: request(
        beacon_body(site="shop", url="https://shop.example/"),
        extra=b"Origin: https://evil.example\r\n"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_paths_give_the_same_answer(both: dict[str, Collector], case: str) -> None:
    data = CASES[case]()
    count = 2 if b"100-continue" in data else 1  # 100 Continue, then the answer
    answers = {path: exchange(collector, data, count) for path, collector in both.items()}
    assert answers["fast"] == answers["asgi"], answers
    assert len(answers["fast"]) == count


def test_pipelined_requests_keep_their_order(both: dict[str, Collector]) -> None:
    pipeline = (request(beacon_body()) + request(b"{") + b"GET /healthz HTTP/1.1\r\nHost: c\r\n\r\n"
                + request(beacon_body(), content_type=b"image/png") + request(beacon_body()))
    for collector in both.values():
        answers = exchange(collector, pipeline, answers=5)
        assert [status_of(a) for a in answers] == [204, 400, 200, 415, 204]


async def test_beacons_behind_a_registry_refresh_are_answered_in_order(
        start_collector: Any, conn: asyncpg.Connection) -> None:
    """A beacon for a site the collector has not seen yet waits for the registry to
    be re-read (the fast path hands it to the ASGI route); what is pipelined behind
    it waits for its answer."""
    collector = start_collector(serve=True, rate_limit_per_minute=0, batch_max_ms=20,
                                sites_refresh_seconds=3600)
    site = "added-" + str(time.time_ns())
    time.sleep(1.1)  # past the registry's one re-read a second for unknown sites
    await conn.execute("INSERT INTO binome.sites (site) VALUES ($1)", site)
    first = make_beacon(site=site)
    second = make_beacon()
    answers = exchange(collector, request(json.dumps(first).encode()) + request(b"{")
                       + request(json.dumps(second).encode()), answers=3)
    assert [status_of(a) for a in answers] == [204, 400, 204]
    await stored(conn, first["pv"])
    await stored(conn, second["pv"])


@pytest.mark.parametrize("serve", [True, False], ids=["fast", "asgi"])
async def test_a_beacon_arriving_during_a_shutdown_is_answered_and_stored(
        start_collector: Any, conn: asyncpg.Connection, serve: bool) -> None:
    """SIGTERM while a beacon's body is on its way: it is answered, the
    connection closed, and the beacon written before the collector exits."""
    collector = start_collector(serve=serve, rate_limit_per_minute=0, batch_max_ms=20)
    beacon = make_beacon()
    data = request(json.dumps(beacon).encode())
    with socket.create_connection(("127.0.0.1", collector.port), timeout=10) as sock:
        sock.sendall(data[:-50])
        time.sleep(0.3)
        collector.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(data[-50:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 204 ") and b"connection: close\r\n" in answer
    # binome serve exits 0; plain uvicorn re-raises the SIGTERM it handled
    assert collector.process.wait(20) in (0, -signal.SIGTERM)
    await stored(conn, beacon["pv"])


def test_a_client_gone_before_its_body_ended_is_counted(both: dict[str, Collector]) -> None:
    for collector in both.values():
        before = _rejected(collector, "incomplete_body")
        with socket.create_connection(("127.0.0.1", collector.port), timeout=5) as sock:
            sock.sendall(request(b"x" * 1000)[:-900])  # 900 bytes short
            time.sleep(0.2)
        deadline = time.monotonic() + 5
        while _rejected(collector, "incomplete_body") != before + 1:
            assert time.monotonic() < deadline, "the incomplete body was not counted"
            time.sleep(0.05)


def _rejected(collector: Collector, reason: str) -> float:
    text = httpx.get(collector.url + "/metrics").text
    match = re.search(rf'binome_beacons_rejected_total\{{reason="{reason}"\}} (\S+)', text)
    return float(match.group(1)) if match else 0.0
