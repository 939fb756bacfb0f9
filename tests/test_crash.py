"""Issue 23: with BINOME_DURABLE=true a 204 survives a crash. `binome serve` runs
as a real process under load from concurrent senders and is killed with SIGKILL
at random moments (under load, during a PostgreSQL outage, at a start during the
outage, during the replay that follows, and again under load); after the last
restart every beacon answered 204 must be stored, exactly once.

The outage is real: the collector reaches PostgreSQL through a TCP proxy that
the test runs, and stopping the proxy resets every connection and refuses new
ones; the proxy can also throttle the bytes sent to PostgreSQL, so that a replay
lasts long enough to be killed in the middle.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import orjson
import pytest

from collector.spool import SUFFIX
from tests.conftest import Collector, free_port, make_beacon

TEXT = {"Content-Type": "text/plain"}
SENDERS = 8
DURABLE = {"durable": "true", "rate_limit_per_minute": 0, "batch_max_ms": 50}


class PgProxy:
    """A TCP proxy to PostgreSQL, in a thread of its own (the test's event loop
    blocks while a collector starts). stop() is an outage: every connection is
    reset and new ones are refused until start(); `bytes_per_second` throttles
    what goes to PostgreSQL (a COPY), not the small queries."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.bytes_per_second: float | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def url(self, database_url: str) -> str:
        parts = urlsplit(database_url)
        user = parts.netloc.rpartition("@")[0]
        netloc = (user + "@" if user else "") + f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                      reuse_address=True)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer, throttled=True),
                             self._pipe(up_reader, writer, throttled=False))
        self._writers -= {writer, up_writer}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    throttled: bool) -> None:
        try:
            while data := await reader.read(65536):
                rate = self.bytes_per_second
                if throttled and rate and len(data) > 1024:
                    await asyncio.sleep(len(data) / rate)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


@pytest.fixture
def pg_proxy(database_url: str) -> Iterator[PgProxy]:
    parts = urlsplit(database_url)
    proxy = PgProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.start()
    yield proxy
    proxy.close()


class Senders:
    """SENDERS clients posting distinct beacons without pause; `acked` holds the
    page view of each beacon answered 204 (one beacon a page view)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.url = ""
        self.acked: set[str] = set()
        self.answers: dict[int | str, int] = {}
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []
        self._sent = [0] * SENDERS  # across restarts: every beacon distinct

    def start(self, url: str) -> None:
        self.url = url
        self._running = True
        self._tasks = [asyncio.create_task(self._send(n)) for n in range(SENDERS)]

    async def stop(self) -> None:
        self._running = False
        await asyncio.gather(*self._tasks)

    async def _send(self, sender: int) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while self._running:
                self._sent[sender] += 1
                pv = f"{self.tag}-{sender}-{self._sent[sender]}"
                body = orjson.dumps(make_beacon(pv=pv))
                try:
                    response = await client.post(self.url + "/beacon", content=body,
                                                 headers=TEXT)
                except httpx.HTTPError as exc:
                    key: int | str = type(exc).__name__
                    await asyncio.sleep(0.02)
                else:
                    key = response.status_code
                    if response.status_code == 204:
                        self.acked.add(pv)
                    elif response.status_code == 503:
                        await asyncio.sleep(0.02)
                self.answers[key] = self.answers.get(key, 0) + 1


def kill(collector: Collector) -> None:
    collector.process.send_signal(signal.SIGKILL)
    collector.process.wait(10)


def spool_files(directory: Path) -> list[Path]:
    return [p for p in directory.glob("*" + SUFFIX) if p.stat().st_size > 0]


async def test_no_beacon_answered_204_is_lost_or_stored_twice_across_kills(
        database_url: str, start_collector: Any, pg_proxy: PgProxy, tmp_path: Path,
        conn: asyncpg.Connection) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    print(f"random seed {seed}")
    spool_dir = tmp_path / "spool-shared"
    via_proxy = pg_proxy.url(database_url)
    senders = Senders("crash" + os.urandom(3).hex())
    kills: list[str] = []
    began = time.monotonic()

    async def answered(more: int) -> None:
        """Until `more` beacons more are answered 204 (a start under load is slow
        on a busy machine: the kill must come once the collector takes beacons)."""
        target = len(senders.acked) + more
        deadline = time.monotonic() + 30
        while len(senders.acked) < target:
            assert time.monotonic() < deadline, (kills, senders.answers)
            await asyncio.sleep(0.02)

    async def run(moment: str, *, outage: bool = False) -> None:
        collector = await asyncio.to_thread(start_collector, via_proxy, spool_dir=spool_dir,
                                            **DURABLE)
        senders.start(collector.url)
        await answered(20)
        if outage:
            pg_proxy.stop()
            await answered(20)
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        kill(collector)
        await senders.stop()
        kills.append(moment)
        print(f"{time.monotonic() - began:.1f} s: killed {moment}; answers so far "
              f"{senders.answers}")

    # 1, 2: under load (the second start also replays what the first kill left).
    await run("under load")
    await run("under load, after a replay at start")
    # 3: PostgreSQL goes away under load; killed while beacons are spooled.
    await run("during a PostgreSQL outage", outage=True)
    # 4: a start during the outage (sites from sites.json), killed under load.
    await run("after a start during the outage")
    assert spool_files(spool_dir), "the outage left nothing to replay"

    # 5: PostgreSQL is back but slow: killed while the start's replay runs.
    pg_proxy.bytes_per_second = 50_000
    pg_proxy.start()
    collector = await asyncio.to_thread(start_collector, via_proxy, spool_dir=spool_dir,
                                        **DURABLE)
    senders.start(collector.url)
    deadline = time.monotonic() + 20
    while "spool replay started" not in collector.log_path.read_text():
        assert time.monotonic() < deadline, "the replay did not start"
        await asyncio.sleep(0.02)
    await asyncio.sleep(rng.uniform(0.05, 0.4))
    kill(collector)
    await senders.stop()
    kills.append("during a replay")
    assert "spool replay done" not in collector.log_path.read_text(), \
        "the replay ended before the kill"

    # 6: under load again, PostgreSQL at full speed.
    pg_proxy.bytes_per_second = None
    await run("under load, after the interrupted replay")

    # The last start replays what is left; then every 204 is in PostgreSQL.
    final = await asyncio.to_thread(start_collector, via_proxy, spool_dir=spool_dir,
                                    **DURABLE)
    acked = sorted(senders.acked)
    assert len(kills) >= 5 and len(acked) > 200, (kills, senders.answers)
    deadline = time.monotonic() + 30
    while True:
        stored = await conn.fetchval(
            "SELECT count(*) FROM binome.beacons WHERE site = 'demo' AND pv = ANY($1)", acked)
        if stored == len(acked) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    rows = await conn.fetch(
        "SELECT pv, count(*) AS n FROM binome.beacons WHERE site = 'demo' AND starts_with(pv, $1)"
        " GROUP BY pv", senders.tag)
    counts = {row["pv"]: row["n"] for row in rows}
    lost = [pv for pv in acked if pv not in counts]
    twice = [pv for pv, n in counts.items() if n > 1]
    print(f"kills: {kills}; answers: {senders.answers}; 204: {len(acked)}; "
          f"stored: {len(counts)} (beacons not answered 204 may be stored too)")
    assert not lost, f"{len(lost)} of {len(acked)} beacons answered 204 were lost: {lost[:5]}"
    assert not twice, f"stored twice: {twice[:5]}"
    final.stop()
    assert final.process.returncode == 0


async def test_a_torn_last_frame_is_detected_and_the_intact_frames_are_kept(
        database_url: str, start_collector: Any, tmp_path: Path,
        conn: asyncpg.Connection) -> None:
    """A crash mid-append leaves a torn frame at the end of the log: the next
    start replays the frames before it and sets the file aside."""
    spool_dir = tmp_path / "spool-torn"
    tag = "torn" + os.urandom(3).hex()
    # The writer holds its batch for a minute: the beacons stay in the log only.
    collector = await asyncio.to_thread(
        start_collector, spool_dir=spool_dir, durable="true", rate_limit_per_minute=0,
        batch_max_ms=60_000, batch_max_rows=10_000)
    pvs = [f"{tag}-{n}" for n in range(5)]
    async with httpx.AsyncClient(timeout=5) as client:
        for pv in pvs:  # one at a time: one frame each
            response = await client.post(collector.url + "/beacon", headers=TEXT,
                                         content=orjson.dumps(make_beacon(pv=pv)))
            assert response.status_code == 204
    kill(collector)
    (segment,) = spool_files(spool_dir)
    size = segment.stat().st_size
    os.truncate(segment, size - 100)  # the last frame loses its tail

    collector = await asyncio.to_thread(start_collector, spool_dir=spool_dir, durable="true")
    deadline = time.monotonic() + 20
    while True:
        stored = await conn.fetch("SELECT pv FROM binome.beacons WHERE starts_with(pv, $1)", tag)
        if len(stored) >= 4 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert sorted(row["pv"] for row in stored) == pvs[:4]
    quarantined = spool_dir / "quarantine" / segment.name
    deadline = time.monotonic() + 10
    while not quarantined.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert quarantined.stat().st_size == size - 100
    assert not segment.exists()
    events = [orjson.loads(line) for line in collector.log_path.read_text().splitlines()
              if line.startswith("{")]
    (damage,) = [e for e in events if e["event"] == "damaged spool file quarantined"]
    assert damage["beacons_replayed"] == 4
    assert [d["reason"] for d in damage["damage"]] == ["truncated or oversized frame"]
    with contextlib.suppress(Exception):
        collector.stop()


async def test_a_full_log_answers_503_with_retry_after_and_shows_in_metrics(
        start_collector: Any, pg_proxy: PgProxy, database_url: str, tmp_path: Path) -> None:
    """The log shares the spool's disk cap: during an outage both fill, and then
    POST /beacon answers 503 with Retry-After, never a 204 it cannot keep."""
    cap = 64 * 1024
    spool_dir = tmp_path / "spool-full"
    collector = await asyncio.to_thread(
        start_collector, pg_proxy.url(database_url), spool_dir=spool_dir, durable="true",
        rate_limit_per_minute=0, spool_max_bytes=cap, batch_max_ms=20)
    async with httpx.AsyncClient(timeout=10) as client:
        async def post() -> httpx.Response:
            return await client.post(collector.url + "/beacon", headers=TEXT,
                                     content=orjson.dumps(make_beacon(pv="full" + os.urandom(6).hex())))

        assert (await post()).status_code == 204
        pg_proxy.stop()
        statuses = []
        for _ in range(400):
            response = await post()
            statuses.append(response.status_code)
            if response.status_code == 503:
                break
        assert response.status_code == 503, statuses
        assert response.json()["error"] == "overloaded"
        assert int(response.headers["retry-after"]) > 0
        used = sum(p.stat().st_size for p in spool_dir.glob("*" + SUFFIX))
        assert used <= cap + 4096  # the cap, give or take the frame that reached it
        assert statuses.count(204) >= 10
        metrics = (await client.get(collector.url + "/metrics")).text
    samples = {line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
               for line in metrics.splitlines() if line.startswith("binome_durable")}
    assert samples["binome_durable_fsync_seconds_count"] >= statuses.count(204)
    assert samples["binome_durable_group_beacons_sum"] == statuses.count(204) + 1
    assert samples["binome_durable_log_bytes"] > 0
