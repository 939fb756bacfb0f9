"""Fault tests: a 204 is a promise kept through a PostgreSQL outage, a restart,
a poisoned row and a full spool.

They run against a private cluster created with initdb and stopped and started
with pg_ctl (collector/embedded.py), never the machine's shared server, and
against real collector processes over HTTP: no mocks.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector import PROJECT_ROOT, db
from collector.spool import MAGIC, Spool
from tests.conftest import (
    _create_database,
    _drop_database,
    free_port,
    make_beacon,
    require,
)

TEXT = {"Content-Type": "text/plain"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from collector.embedded import EmbeddedPostgres, EmbeddedPostgresError

    pg = EmbeddedPostgres(tmp_path_factory.mktemp("faults") / "pg")
    try:
        pg.start()
    except EmbeddedPostgresError as exc:
        require(False, f"no PostgreSQL binaries for a private cluster: {exc}")
    try:
        yield pg
    finally:
        pg.remove()


@pytest.fixture
def fault_db(cluster: Any) -> Iterator[str]:
    """A fresh migrated database on the private cluster, with the `demo` site."""
    if not cluster.is_running():
        cluster.start()

    async def create() -> str:
        url = await _create_database(cluster.url)
        conn = await db.connect(url)
        try:
            await db.migrate(conn, PROJECT_ROOT / "sql")
            await db.add_site(conn, "demo", [])
        finally:
            await conn.close()
        return url

    url = asyncio.run(create())
    yield url
    if not cluster.is_running():
        cluster.start()
    asyncio.run(_drop_database(cluster.url, url))


class Sender(threading.Thread):
    """Posts beacons one after another until stopped; keeps the pv of every 204."""

    def __init__(self, url: str, prefix: str, pause: float = 0.004) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.prefix = prefix
        self.pause = pause
        self.accepted: list[tuple[float, str]] = []
        self.statuses: collections.Counter[int | str] = collections.Counter()
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            n = 0
            while not self._halt.is_set():
                pv = f"{self.prefix}{n:07d}"
                n += 1
                try:
                    response = client.post(self.url + "/beacon",
                                           content=json.dumps(make_beacon(pv=pv)), headers=TEXT)
                except httpx.HTTPError as exc:
                    self.statuses[type(exc).__name__] += 1
                    continue
                self.statuses[response.status_code] += 1
                if response.status_code == 204:
                    self.accepted.append((time.monotonic(), pv))
                time.sleep(self.pause)

    def stop(self) -> None:
        self._halt.set()
        self.join(30)


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def metric(url: str, name: str, **labels: str) -> float:
    return metrics(url).get((name, tuple(sorted(labels.items()))), 0.0)


async def stored(url: str, prefix: str) -> tuple[int, set[str]]:
    """(rows, distinct pvs) stored for beacons whose pv starts with prefix."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT pv FROM binome.beacons WHERE pv LIKE $1", prefix + "%")
    finally:
        await conn.close()
    return len(rows), {r["pv"] for r in rows}


def wait_until_stored(url: str, prefix: str, expected: set[str],
                      timeout: float = 30) -> tuple[int, set[str]]:
    deadline = time.monotonic() + timeout
    while True:
        count, pvs = asyncio.run(stored(url, prefix))
        if pvs >= expected or time.monotonic() > deadline:
            return count, pvs
        time.sleep(0.2)


def wait_for_status(url: str, status: int, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url + "/readyz", timeout=10)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def log_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def test_outage_every_204_is_stored_exactly_once(
    cluster: Any, fault_db: str, start_collector: Any
) -> None:
    collector = start_collector(database_url=fault_db, batch_max_ms=20,
                                rate_limit_per_minute=0, sites_refresh_seconds=1)
    sender = Sender(collector.url, "outage")
    sender.start()
    try:
        time.sleep(1.0)
        cluster.stop()
        down_at = time.monotonic()
        not_ready = wait_for_status(collector.url, 503, timeout=10)
        assert not_ready.status_code == 503
        assert "database" in not_ready.json()["reason"]
        assert httpx.get(collector.url + "/healthz").status_code == 200
        time.sleep(max(0.0, 5.0 - (time.monotonic() - down_at)))
        assert metric(collector.url, "binome_spooling") == 1
        assert metric(collector.url, "binome_spool_bytes") > 0
        cluster.start()
        up_at = time.monotonic()
        time.sleep(1.0)
    finally:
        sender.stop()

    accepted = {pv for _at, pv in sender.accepted}
    during_outage = [pv for at, pv in sender.accepted if down_at <= at < up_at]
    assert len(during_outage) > 100, sender.statuses
    assert set(sender.statuses) == {204}, sender.statuses  # no 5xx, no refusals
    count, pvs = wait_until_stored(fault_db, "outage", accepted)
    assert pvs == accepted
    assert count == len(accepted)  # exactly once

    assert wait_for_status(collector.url, 200).status_code == 200
    deadline = time.monotonic() + 10
    while metric(collector.url, "binome_spooling") and time.monotonic() < deadline:
        time.sleep(0.1)
    figures = metrics(collector.url)
    assert figures[("binome_spooling", ())] == 0
    assert figures[("binome_spool_files", ())] == 0
    assert figures[("binome_beacons_spooled_total", ())] >= len(during_outage)
    assert figures[("binome_beacons_replayed_total", ())] >= len(during_outage)
    events = log_events(collector.log_path)
    # A COMMIT cut by the stop may have landed: its batch is resent and then
    # counts as a resend. The writer says so; only those beacons may go uncounted.
    uncertain = sum(e["beacons"] for e in events
                    if e.get("event") == "batch commit outcome unknown: the batch is resent")
    written = figures[("binome_rows_written_total", ())]
    assert len(accepted) - uncertain <= written <= len(accepted)
    assert figures[("binome_beacons_dropped_total", ())] == 0

    names = [e.get("event") for e in events]
    for expected in ("database writes failing: spooling batches to disk",
                     "database writes succeed again", "spool replay started",
                     "spool replay done"):
        assert expected in names, names
    assert len(events) < 60  # state changes, never a line per beacon
    done = [e for e in events if e.get("event") == "spool replay done"]
    print(f"\noutage: {len(during_outage)} beacons accepted while PostgreSQL was down, "
          f"{count} of {len(accepted)} stored; replay: {done}")


def _serve(database_url: str, spool_dir: Path, log: Path, *args: str, probe: str = "/readyz",
           **settings: Any) -> tuple[subprocess.Popen[bytes], str]:
    """`binome serve`, once each worker has started and `probe` answers 200."""
    port = free_port()
    env = {**os.environ, "BINOME_DATABASE_URL": database_url, "BINOME_SPOOL_DIR": str(spool_dir),
           "BINOME_RATE_LIMIT_PER_MINUTE": "0"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({f"BINOME_{k.upper()}": str(v) for k, v in settings.items()})
    workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
    offset = log.stat().st_size if log.exists() else 0
    process = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "serve", "--port", str(port), *args],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"binome serve exited:\n{log.read_text()}")
        started = log.read_bytes()[offset:].count(b'"event":"collector started"')
        try:
            # Every worker up: one still starting would find PostgreSQL stopped.
            if (started == workers
                    and httpx.get(url + probe, timeout=1).status_code == 200):
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"binome serve did not become ready:\n{log.read_text()}")


def burst(url: str, prefix: str, n: int) -> tuple[set[str], collections.Counter[int]]:
    def send(i: int) -> tuple[str, int]:
        pv = f"{prefix}{i:06d}"
        response = client.post(url + "/beacon", content=json.dumps(make_beacon(pv=pv)),
                               headers=TEXT)
        return pv, response.status_code

    # One client for every thread: a Client per request spends ~25 ms building TLS contexts.
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, range(n)))
    return {pv for pv, status in results if status == 204}, collections.Counter(
        status for _pv, status in results)


def test_sigterm_after_a_burst_keeps_every_204(
    cluster: Any, fault_db: str, tmp_path: Path
) -> None:
    """`binome serve --workers 2`: SIGTERM with the burst still queued (long batch
    wait), first with PostgreSQL up, then with PostgreSQL down (the queue goes to
    the spool, replayed first at the next start)."""
    spool_dir = tmp_path / "spool"
    log = tmp_path / "serve.log"
    settings = {"batch_max_ms": 5000, "batch_max_rows": 5000}

    process, url = _serve(fault_db, spool_dir, log, "--workers", "2", **settings)
    accepted, statuses = burst(url, "termup", 400)
    assert statuses == {204: 400}
    assert asyncio.run(stored(fault_db, "termup"))[0] < 400  # still queued at SIGTERM
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert asyncio.run(stored(fault_db, "termup")) == (400, accepted)

    process, url = _serve(fault_db, spool_dir, log, "--workers", "2", **settings)
    cluster.stop()
    try:
        accepted, statuses = burst(url, "termdown", 400)
        assert statuses == {204: 400}
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        cluster.start()
    assert Spool(spool_dir, max_bytes=1).usage()[0] > 0  # the queue went to disk
    assert asyncio.run(stored(fault_db, "termdown"))[0] == 0

    process, url = _serve(fault_db, spool_dir, log, "--workers", "2", batch_max_ms=20)
    try:
        count, pvs = wait_until_stored(fault_db, "termdown", accepted)
        assert (count, pvs) == (400, accepted)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    assert Spool(spool_dir, max_bytes=1).usage() == (0, 0)
    text = log.read_text()
    assert "spool found at start, replaying it first" in text and "Traceback" not in text


def test_a_poisoned_row_is_dead_lettered_and_counted(
    fault_db: str, start_collector: Any
) -> None:
    async def poison() -> None:
        conn = await asyncpg.connect(fault_db)
        # A rule PostgreSQL enforces and the beacon model does not know.
        await conn.execute("ALTER TABLE binome.beacons ADD CONSTRAINT no_poison"
                           " CHECK (path <> '/poison')")
        await conn.close()

    asyncio.run(poison())
    collector = start_collector(database_url=fault_db, batch_max_ms=500,
                                rate_limit_per_minute=0)
    beacons = [make_beacon(pv=f"poisonbatch{i:04d}") for i in range(10)]
    beacons.insert(5, make_beacon(pv="poisonedrow0001", url="https://shop.example/poison"))
    with ThreadPoolExecutor(11) as pool:
        statuses = list(pool.map(lambda b: httpx.post(
            collector.url + "/beacon", content=json.dumps(b), headers=TEXT).status_code, beacons))
    assert statuses == [204] * 11  # accepted: the refusal comes from PostgreSQL, later
    count, pvs = wait_until_stored(fault_db, "poisonbatch", {f"poisonbatch{i:04d}"
                                                            for i in range(10)})
    assert count == 10

    async def letters() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(fault_db)
        try:
            return await conn.fetch("SELECT error, record->>'pv' AS pv FROM binome.dead_letters")
        finally:
            await conn.close()

    (letter,) = asyncio.run(letters())
    assert letter["pv"] == "poisonedrow0001" and "no_poison" in letter["error"]
    figures = metrics(collector.url)
    assert figures[("binome_dead_letters_total", ())] == 1
    assert figures[("binome_rows_written_total", ())] == 10
    assert figures[("binome_beacons_accepted_total", ())] == 11
    assert figures[("binome_batches_written_total", ())] >= 1
    assert figures[("binome_spooling", ())] == 0  # a data error is not an outage
    assert "row refused, kept in binome.dead_letters" in collector.log_path.read_text()


def test_spool_full_answers_503_and_loses_nothing_accepted(
    cluster: Any, fault_db: str, start_collector: Any
) -> None:
    collector = start_collector(database_url=fault_db, batch_max_ms=20, batch_max_rows=10,
                                queue_max=40, spool_max_bytes=64 * 1024,
                                rate_limit_per_minute=0)
    accepted: set[str] = set()
    refused = None
    cluster.stop()
    try:
        with httpx.Client(timeout=10) as client:
            for i in range(3000):
                pv = f"spoolfull{i:05d}"
                response = client.post(collector.url + "/beacon",
                                       content=json.dumps(make_beacon(pv=pv)), headers=TEXT)
                if response.status_code == 204:
                    accepted.add(pv)
                    continue
                assert response.status_code == 503
                reason = client.get(collector.url + "/readyz").json()["reason"]
                if "spool full" in reason:
                    refused = response
                    break
                # The queue outran the disk for a moment (fsync behind PostgreSQL's
                # shutdown checkpoint): backpressure too, but not the spool full.
                time.sleep(0.1)
        assert refused is not None, "the spool never filled"
        assert refused.json()["error"] == "overloaded"
        assert refused.headers["Retry-After"] == "30"
        ready = httpx.get(collector.url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert "database unreachable" in ready.json()["reason"]
        figures = metrics(collector.url)
        assert figures[("binome_beacons_rejected_total", (("reason", "overloaded"),))] >= 1
        assert figures[("binome_queue_depth", ())] == 40
        assert 64 * 1024 - 12_000 < figures[("binome_spool_bytes", ())] <= 64 * 1024
        assert figures[("binome_beacons_dropped_total", ())] == 0
    finally:
        cluster.start()
    count, pvs = wait_until_stored(fault_db, "spoolfull", accepted)
    assert (count, pvs) == (len(accepted), accepted)
    assert wait_for_status(collector.url, 200).status_code == 200
    after = httpx.post(collector.url + "/beacon", content=json.dumps(make_beacon()), headers=TEXT)
    assert after.status_code == 204
    assert metric(collector.url, "binome_beacons_dropped_total") == 0


def test_a_damaged_spool_file_is_quarantined_and_the_collector_starts(
    fault_db: str, start_collector: Any, tmp_path: Path
) -> None:
    from tests.test_spool import real_record

    spool_dir = tmp_path / "damaged-spool"
    spool = Spool(spool_dir, max_bytes=2**20)
    spool.open()
    good = [real_record(pv=f"salvaged{i:04d}") for i in range(3)]
    for record in good:
        spool.append([record])
    spool.seal()
    (torn,) = spool.pending_files()
    with torn.open("ab") as file:  # the writer died in the middle of an append
        file.write(MAGIC + (9999).to_bytes(4, "little") + b"garbage")
    (spool_dir / "00000000000000000000-1-000001.spool").write_bytes(os.urandom(3000))

    collector = start_collector(database_url=fault_db, spool_dir=spool_dir, batch_max_ms=20)
    assert wait_for_status(collector.url, 200).status_code == 200
    count, pvs = wait_until_stored(fault_db, "salvaged", {r[2] for r in good})
    assert count == 3
    deadline = time.monotonic() + 10
    while metric(collector.url, "binome_spool_quarantined_files_total") < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert sorted(p.name for p in (spool_dir / "quarantine").iterdir()) == sorted(
        ["00000000000000000000-1-000001.spool", torn.name])
    assert Spool(spool_dir, max_bytes=1).usage() == (0, 0)
    quarantined = [e for e in log_events(collector.log_path)
                   if e.get("event") == "damaged spool file quarantined"]
    assert len(quarantined) == 2 and all(e["damage"] for e in quarantined)


def test_serve_starts_while_postgresql_is_down_and_stores_once_it_is_back(
    cluster: Any, fault_db: str, tmp_path: Path
) -> None:
    """A collector started with PostgreSQL stopped answers /healthz, is not ready,
    accepts beacons for the sites it read last time (the registry cached on disk),
    spools them, and once PostgreSQL is back applies the pending migration and
    stores each of them once."""
    spool_dir = tmp_path / "spool"
    log = tmp_path / "serve.log"
    process, url = _serve(fault_db, spool_dir, log)  # reads the registry: cached
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert "demo" in json.loads((spool_dir / "sites.json").read_text())

    # The next version brings a migration: pending while PostgreSQL is down.
    sql_dir = tmp_path / "sql"
    shutil.copytree(PROJECT_ROOT / "sql", sql_dir)
    (sql_dir / "migrations" / "9999_startup_probe.sql").write_text(
        "CREATE TABLE binome.startup_probe (x int);")
    cluster.stop()
    try:
        process, url = _serve(fault_db, spool_dir, log, probe="/healthz", sql_dir=sql_dir,
                              batch_max_ms=20)
        ready = httpx.get(url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert "database unreachable" in ready.json()["reason"]
        known = httpx.post(url + "/beacon", content=json.dumps(make_beacon(pv="downstart1")),
                           headers=TEXT, timeout=10)
        assert known.status_code == 204
        # A site it never read may exist: come back later, not "unknown site".
        other = httpx.post(url + "/beacon", timeout=10, headers=TEXT,
                           content=json.dumps(make_beacon(site="elsewhere")))
        assert other.status_code == 503 and other.headers["Retry-After"] == "30"
        assert other.json()["error"] == "sites_unavailable"
    finally:
        cluster.start()
    try:
        assert wait_until_stored(fault_db, "downstart", {"downstart1"}) == (1, {"downstart1"})
        assert wait_for_status(url, 200).status_code == 200

        async def migrations() -> list[str]:
            conn = await asyncpg.connect(fault_db)
            try:
                return [r["name"] for r in await conn.fetch(
                    "SELECT name FROM binome.schema_migrations ORDER BY version")]
            finally:
                await conn.close()

        assert asyncio.run(migrations())[-1] == "9999_startup_probe"
        time.sleep(1)  # a resend would show by now
        assert asyncio.run(stored(fault_db, "downstart")) == (1, {"downstart1"})
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    text = log.read_text()
    assert "PostgreSQL unreachable" in text and "Traceback" not in text
