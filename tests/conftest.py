"""Shared fixtures: a real PostgreSQL database and a real collector over HTTP.

The database is a fresh one created on the server in BINOME_DATABASE_URL (CI
points it at the machine's PostgreSQL), else on an embedded PostgreSQL started
for the session. Under CI=true nothing may be skipped: a missing database or
browser is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from collector import PROJECT_ROOT, db
from collector.settings import Settings
from collector.sites import remove_site

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Test clients are automated (httpx says "python-httpx", Chromium "HeadlessChrome"),
# and a collector drops automated traffic by default. Every collector a test starts
# inherits this and stores it, unless the test says otherwise: tests/test_abuse.py
# and tests/test_fuzz.py check the default behaviour with BINOME_STORE_AUTOMATED=false.
os.environ.setdefault("BINOME_STORE_AUTOMATED", "true")


def require(condition: bool, reason: str) -> None:
    """Skip locally when something is missing; fail under CI=true."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def create_login(conn: asyncpg.Connection, database_url: str, name: str,
                       in_role: str | None = None) -> str:
    """A login role with a random password, and the URL it logs in with: the
    embedded PostgreSQL asks for passwords, as production servers do."""
    password = secrets.token_urlsafe(24)
    member = f" IN ROLE {in_role}" if in_role else ""
    await conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'{member}")
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{name}:{password}@{host}"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _private_spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`binome serve` run by a test spools under the test's tmp dir, never in .binome/."""
    monkeypatch.setenv("BINOME_SPOOL_DIR", str(tmp_path / "spool"))


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server URL (any database on it) this session may create databases on."""
    url = os.environ.get("BINOME_DATABASE_URL")
    if url:
        yield url
        return
    from collector.embedded import EmbeddedPostgres, EmbeddedPostgresError

    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
    try:
        url = embedded.start()
    except EmbeddedPostgresError as exc:
        require(False, f"no database: {exc}")
        raise
    try:
        yield url
    finally:
        embedded.remove()


async def _create_database(server: str) -> str:
    name = "binome_test_" + secrets.token_hex(4)
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server, name)


async def _drop_database(server: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def migrated_database(server: str, *sql: str) -> AsyncIterator[str]:
    """A migrated database of its own, with `sql` run on it (the views as first
    written, tests/reference_*.sql, for the equality tests), dropped after."""
    url = await _create_database(server)
    conn = await db.connect(url)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()
    try:
        yield url
    finally:
        await _drop_database(server, url)


@contextlib.asynccontextmanager
async def reference_connection(server: str, reference: str
                               ) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a migrated database of its own (maintain closes every
    site's days there) holding a view as first written, tests/`reference`."""
    sql = (PROJECT_ROOT / "tests" / reference).read_text()
    async with migrated_database(server, sql) as url:
        connection = await db.connect(url)
        try:
            yield connection
        finally:
            await connection.close()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session, dropped at the end."""
    url = asyncio.run(_create_database(server_url))

    async def migrate() -> None:
        conn = await db.connect(url)
        try:
            await db.migrate(conn, PROJECT_ROOT / "sql")
            await db.add_site(conn, "demo", [])
            await db.add_site(conn, "shop", ["https://shop.example", "http://127.0.0.1:9"])
        finally:
            await conn.close()

    async def far_days() -> list[asyncpg.Record]:
        conn = await db.connect(url)
        try:
            return await conn.fetch(
                "SELECT DISTINCT site, day FROM binome.page_views"
                " WHERE day NOT BETWEEN current_date - 90 AND current_date + 1")
        finally:
            await conn.close()

    asyncio.run(migrate())
    yield url
    left = asyncio.run(far_days())
    asyncio.run(_drop_database(server_url, url))
    assert not left, f"page views of far days left in the session's database: {left}" \
        " (use the sites_removed_after fixture)"


@pytest.fixture(scope="module")
async def sites_removed_after(database_url: str) -> AsyncIterator[None]:
    """For a module that writes days far from today: the sites it adds are
    removed after it, as `binome site remove` does. Every site's live days run
    up to the last day of any page view (sql/views/04_live_days.sql), so a
    page view in 2031 left in the session's database made every later test's
    views read five years of days."""
    # Registered or not: a test may write beacons of any site name.
    sites = "SELECT site FROM binome.sites UNION SELECT site FROM binome.rollup_state"
    conn = await asyncpg.connect(database_url)
    try:
        before = {row["site"] for row in await conn.fetch(sites)}
        yield
        for row in await conn.fetch(sites):
            if row["site"] not in before:
                await remove_site(conn, row["site"])
    finally:
        await conn.close()


@pytest.fixture
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """An empty database (not migrated) for tests of migrations themselves."""
    url = await _create_database(server_url)
    yield url
    await _drop_database(server_url, url)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


class Collector:
    """A `binome` collector in its own process, over real HTTP.

    It is `binome serve`, as deployed (without the reverse proxy in front):
    uvicorn with the options of collector/cli.py."""

    def __init__(self, database_url: str, log_path: Path, **settings: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Each collector spools into a directory of its own: a spool replays into
        # whatever database its collector uses, never into another test's.
        settings.setdefault("spool_dir", log_path.parent / (log_path.stem + "-spool"))
        self.spool_dir = Path(settings["spool_dir"])
        # No background maintenance unless a test asks: tests that roll days up
        # call collector.maintenance themselves, at a date of their choosing.
        env = {**os.environ, "BINOME_DATABASE_URL": database_url,
               "BINOME_MAINTENANCE_MINUTES": "0"}
        env.update({f"BINOME_{k.upper()}": str(v) for k, v in settings.items()})
        self._log = log_path.open("wb")
        command = [sys.executable, "-m", "collector.cli", "serve", "--host", "127.0.0.1",
                   "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
        )
        self.log_path = log_path
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"collector did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


@pytest.fixture(scope="session")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a collector on the session's database. Abuse controls that tests
    would trip are off: no rate limit, beacons from test clients and headless browsers
    stored, sids stored as sent (so that a test finds a session by the id it sent).
    tests/test_abuse.py and tests/test_privacy.py test them on collectors of their own."""
    collector = Collector(
        database_url, tmp_path_factory.mktemp("collector") / "collector.log",
        batch_max_ms=20, rate_limit_per_minute=0, sites_refresh_seconds=1,
        store_automated=True, session_id_per_day=False,
    )
    yield collector.url
    collector.stop()


# The dashboard token of the dashboard tests' collectors.
DASHBOARD_TOKEN = "dash-" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def collector(database_url: str, site: str, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Collector]:
    """A collector that requires DASHBOARD_TOKEN, started once the module's own
    `site` fixture has stored its page views."""
    started = Collector(database_url, tmp_path_factory.mktemp("dashboard") / "collector.log",
                        dashboard_token=DASHBOARD_TOKEN, sites_refresh_seconds=1)
    yield started
    started.stop()


@pytest.fixture
def start_collector(
    database_url: str, tmp_path: Path
) -> Iterator[Any]:
    """Start extra collectors with their own settings; stopped after the test."""
    started: list[Collector] = []

    def start(database_url: str = database_url, **settings: Any) -> Collector:
        collector = Collector(database_url, tmp_path / f"collector{len(started)}.log", **settings)
        started.append(collector)
        return collector

    yield start
    for collector in started:
        collector.stop()


async def wait_for(conn: asyncpg.Connection, query: str, *args: Any,
                   expect: Any = None, timeout: float = 10.0) -> Any:
    """Poll `query` until it returns `expect` (or anything truthy when expect is None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await conn.fetchval(query, *args)
        if (value == expect) if expect is not None else bool(value):
            return value
        if time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def stored(conn: asyncpg.Connection, pv: str, count: int = 1) -> list[asyncpg.Record]:
    """The rows of page view `pv` in binome.beacons, once `count` of them are there
    and folded into the page views the views read."""
    await wait_for(conn, "SELECT count(*) FROM binome.beacons WHERE pv = $1", pv, expect=count)
    await folded(conn)
    return await conn.fetch("SELECT * FROM binome.beacons WHERE pv = $1 ORDER BY seq", pv)


async def folded(conn: asyncpg.Connection) -> None:
    """Wait until the collector's folder has folded every stored beacon (0007)."""
    assert await wait_for(conn, "SELECT NOT EXISTS (SELECT 1 FROM binome.fold_queue)"), \
        "the folder left page views queued"


CHROMIUM = Path(os.environ.get("BINOME_CHROMIUM", "/usr/bin/chromium"))


@contextlib.asynccontextmanager
async def chromium(**launch_options: Any) -> AsyncIterator[Any]:
    """Debian's headless Chromium driven by Playwright (which downloads no browser
    of its own), with the flags a sandbox-less CI machine needs."""
    require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        require(False, "Playwright for Python is not installed")
        raise
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
            **launch_options,
        )
        yield browser
        await browser.close()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """One Chromium per test module (a module may define its own, with options)."""
    async with chromium() as launched:
        yield launched


def make_beacon(**overrides: Any) -> dict[str, Any]:
    """The contract's example beacon with fresh ids; keyword arguments replace fields."""
    beacon: dict[str, Any] = {
        "v": 1,
        "consent": "marketing",
        "site": "demo",
        "pv": "pv" + secrets.token_hex(8),
        "seq": 0,
        "t0": time.time() * 1000 - 5000,
        "sid": "s" + secrets.token_hex(8),
        "url": "https://shop.example/p/42?utm_source=newsletter&utm_medium=email"
               "&utm_campaign=black-friday",
        "ref": "https://www.google.com/",
        "release": "2026.11.3",
        "dims": {"page_type": "product", "ab_variant": "B"},
        "device": {"vw": 390, "vh": 844, "dpr": 3, "mem": 4, "cpus": 8, "ect": "4g",
                   "rtt": 50, "downlink": 10, "save_data": False},
        "nav": {"type": "navigate", "dns": 12, "connect": 30, "tls": 18, "ttfb": 210,
                "dom_interactive": 900, "dcl": 950, "load": 1400, "transfer_size": 48213,
                "protocol": "h2"},
        "metrics": [
            {"name": "LCP", "value": 2140.5, "id": "v5-1764150000000-1234", "delta": 2140.5,
             "rating": "good", "navigationType": "navigate",
             "attribution": {"target": "img.hero"}},
            {"name": "CLS", "value": 0.04, "id": "v5-1764150000000-5678", "delta": 0.04},
        ],
        "events": [{"name": "purchase", "value": 49.9, "currency": "EUR"}],
    }
    beacon.update(overrides)
    return beacon


MOBILE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def settings_for(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, **overrides)
