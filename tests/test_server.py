"""The collector's own limits for slow and greedy clients (the body deadline of
collector/ingest.py, the requests answered at once, uvicorn's options in
collector/cli.py), over raw sockets against `binome serve`. Header time and size
are the reverse proxy's (deploy/Caddyfile, tests/test_deploy.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import MOBILE_UA, Collector, make_beacon


@pytest.fixture(scope="module")
def guarded(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    collector = Collector(
        database_url, tmp_path_factory.mktemp("guarded") / "collector.log",
        body_timeout_seconds=1.5, rate_limit_per_minute=0,
        batch_max_ms=20,
    )
    yield collector
    collector.stop()


def connect(collector: Collector) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", collector.port), timeout=10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def post(collector: Collector) -> httpx.Response:
    return httpx.post(collector.url + "/beacon", content=json.dumps(make_beacon()),
                      headers={"Content-Type": "text/plain", "User-Agent": MOBILE_UA})


def test_a_kept_alive_connection_still_works(guarded: Collector) -> None:
    with httpx.Client() as client:
        for _ in range(3):
            assert client.get(guarded.url + "/healthz").status_code == 200
            time.sleep(0.5)  # idle below the keep-alive timeout, past no deadline


def trickle(collector: Collector, results: list[tuple[bytes, float]]) -> None:
    """Headers at once, then a body of 2000 bytes at 20 bytes a second."""
    started = time.monotonic()
    with connect(collector) as sock:
        sock.sendall(b"POST /beacon HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                     b"User-Agent: " + MOBILE_UA.encode() + b"\r\nContent-Length: 2000\r\n\r\n{")
        sock.settimeout(0.05)
        answer = b""
        while time.monotonic() - started < 8:
            try:
                sock.sendall(b" ")
            except OSError:
                break
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break  # the server closed with our bytes still coming: after its answer
            if not chunk:
                break
            answer += chunk
        results.append((answer, time.monotonic() - started))


def test_clients_trickling_bodies_do_not_block_others(guarded: Collector) -> None:
    trickled: list[tuple[bytes, float]] = []
    tricklers = [threading.Thread(target=trickle, args=(guarded, trickled))
                 for _ in range(20)]
    for thread in tricklers:
        thread.start()
    time.sleep(0.3)  # every trickler is connected and sending
    started = time.monotonic()
    with httpx.Client() as client, ThreadPoolExecutor(8) as pool:
        timed = list(pool.map(lambda _: _timed_post(client, guarded), range(100)))
    elapsed = time.monotonic() - started
    for thread in tricklers:
        thread.join()
    assert [status for status, _ in timed] == [204] * 100
    # Blocked, they would wait for a trickler's deadline (1.5 s) at least.
    seconds = sorted(seconds for _, seconds in timed)
    assert seconds[50] < 0.1 and seconds[-1] < 1.0, seconds[-5:]
    assert elapsed < 3
    # Each trickler was answered 408 and cut off once its body deadline (1.5 s)
    # passed, long before its 2000 bytes would have arrived (100 s). (A reset
    # racing the answer can swallow it: the connection still ended in time.)
    assert len(trickled) == 20
    assert all(1.4 < seconds < 4 for _, seconds in trickled), trickled
    answers = [answer for answer, _ in trickled if answer]
    assert answers and all(a.startswith(b"HTTP/1.1 408") and b'"body_timeout"' in a
                           for a in answers)


def _timed_post(client: httpx.Client, collector: Collector) -> tuple[int, float]:
    started = time.monotonic()
    status = client.post(collector.url + "/beacon", content=json.dumps(make_beacon()),
                         headers={"Content-Type": "text/plain", "User-Agent": MOBILE_UA}
                         ).status_code
    return status, time.monotonic() - started


def test_over_the_connection_limit_the_answer_is_json_503(start_collector: Any) -> None:
    """Four requests being answered (their bodies still coming): the fifth gets a
    JSON 503 with Retry-After; idle connections do not count."""
    collector = start_collector(max_connections=4, body_timeout_seconds=10)
    idle = [connect(collector) for _ in range(2)]
    busy = [connect(collector) for _ in range(4)]
    try:
        time.sleep(0.2)
        assert post(collector).status_code == 204
        for sock in busy:
            sock.sendall(b"POST /beacon HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: 100\r\n\r\n{")
        time.sleep(0.3)
        response = post(collector)
        assert response.status_code == 503
        assert response.json()["error"] == "overloaded"
        assert int(response.headers["retry-after"]) > 0
    finally:
        for sock in idle + busy:
            sock.close()
    time.sleep(0.3)  # the busy requests end as their clients go
    assert post(collector).status_code == 204
