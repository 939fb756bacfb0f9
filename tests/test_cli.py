"""The `binome` command (README), run as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import free_port, make_beacon

BINOME = [sys.executable, "-m", "collector.cli"]


def binome(*args: str, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BINOME, *args], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def test_migrate_is_idempotent(fresh_database: str) -> None:
    env = {"BINOME_DATABASE_URL": fresh_database}
    first = binome("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied: 0001_baseline" in first.stdout
    second = binome("migrate", env=env)
    assert second.returncode == 0 and "nothing to apply" in second.stdout


async def test_site_add_with_origins(fresh_database: str) -> None:
    env = {"BINOME_DATABASE_URL": fresh_database}
    done = binome("site", "add", "shop", "--origin", "https://Shop.Example:443/",
                  "--origin", "http://localhost:3000", env=env)
    assert done.returncode == 0, done.stderr
    again = binome("site", "add", "shop", "--origin", "https://www.shop.example", env=env)
    assert again.returncode == 0
    conn = await asyncpg.connect(fresh_database)
    origins = {r["origin"] for r in await conn.fetch(
        "SELECT origin FROM binome.site_origins WHERE site = 'shop'")}
    await conn.close()
    assert origins == {"https://shop.example", "http://localhost:3000", "https://www.shop.example"}


@pytest.mark.parametrize("args", [["site", "add", "Bad Name"], ["site", "add", "ok", "--origin",
                                  "shop.example"], ["site", "add", "ok", "--origin",
                                  "https://shop.example/path"]])
def test_site_add_refuses_bad_input(fresh_database: str, args: list[str]) -> None:
    done = binome(*args, env={"BINOME_DATABASE_URL": fresh_database})
    assert done.returncode == 2
    assert "binome:" in done.stderr and "Traceback" not in done.stderr


def test_report_prints_the_scorecard(live_server: str, database_url: str) -> None:
    beacon = make_beacon()
    httpx.post(live_server + "/beacon", content=json.dumps(beacon),
               headers={"Content-Type": "text/plain"})
    time.sleep(0.3)
    done = binome("report", "--site", "demo", "--days", "7",
                  env={"BINOME_DATABASE_URL": database_url, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "Shared scorecard" in done.stdout and "black-friday" in done.stdout
    assert "2026.11.3" in done.stdout  # the release table


def _serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([*BINOME, "serve", "--port", str(port), *args],
                               env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    # --demo seeds a month of traffic before it listens (collector/demo.py): up to
    # a minute on a busy machine.
    deadline = time.monotonic() + (240 if "--demo" in args else 60)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read().decode() if process.stdout else "exited")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("binome serve did not become ready")


def _metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(30)


def test_serve_migrates_accepts_and_exits_cleanly(fresh_database: str) -> None:
    process, url = _serve({"BINOME_DATABASE_URL": fresh_database}, "--demo")
    try:
        response = httpx.post(url + "/beacon", content=json.dumps(make_beacon()),
                              headers={"Content-Type": "text/plain"})
        assert response.status_code == 204
    finally:
        assert _stop(process) == 0


def test_serve_with_the_embedded_postgresql(tmp_path: Path) -> None:
    """`make run`'s path: no BINOME_DATABASE_URL, a cluster under the data dir."""
    env = {"BINOME_DATA_DIR": str(tmp_path / "binome"), "BINOME_BATCH_MAX_MS": "20"}
    env_without_url: dict[str, Any] = {k: v for k, v in os.environ.items()
                                       if k != "BINOME_DATABASE_URL"}
    saved = os.environ.copy()
    os.environ.clear()
    os.environ.update(env_without_url)
    try:
        process, url = _serve(env, "--demo")
        try:
            response = httpx.post(url + "/beacon", content=json.dumps(make_beacon()),
                                  headers={"Content-Type": "text/plain"})
            assert response.status_code == 204
            deadline = time.monotonic() + 10
            while _metric(url, "binome_rows_written_total") < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _metric(url, "binome_rows_written_total") == 1
        finally:
            assert _stop(process) == 0
        assert (tmp_path / "binome" / "pgdata").exists()
        # The cluster stopped with the collector.
        assert not (tmp_path / "binome" / "pgdata" / "postmaster.pid").exists()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        from collector.embedded import EmbeddedPostgres

        EmbeddedPostgres(tmp_path / "binome").remove()


# What one unauthenticated beacon put in the analyst's terminal (issue 20): a
# window-title change (OSC 0), a rich hyperlink, a colour (CSI).
HOSTILE_CAMPAIGN = "\x1b]0;pwned\x07[link=https://evil.example]x[/link]\x1b[31mred"


async def test_report_prints_stored_strings_as_plain_text(
    live_server: str, conn: asyncpg.Connection, database_url: str
) -> None:
    from io import StringIO
    from urllib.parse import quote

    from rich.console import Console

    from collector.report import print_report
    from tests.conftest import stored

    beacon = make_beacon(
        url="https://shop.example/p/42?utm_medium=email&utm_campaign=" + quote(HOSTILE_CAMPAIGN),
        release="[link=https://evil.example]r1[/link]\x1b[31m\x9b31m")
    answer = httpx.post(live_server + "/beacon", content=json.dumps(beacon),
                        headers={"Content-Type": "text/plain"})
    assert answer.status_code == 204
    await stored(conn, beacon["pv"])
    output = StringIO()
    console = Console(file=output, force_terminal=True, color_system="truecolor", width=400)
    await print_report(database_url, site="demo", days=7, console=console)
    rendered = output.getvalue()
    assert "\x1b]" not in rendered  # no title change, no hyperlink (OSC 8)
    assert "\x07" not in rendered and "\x9b" not in rendered
    assert "\x1b[31mred" not in rendered and "\x1b[31m\x9b" not in rendered
    # the markup shows as the text it is
    assert "[link=https://evil.example]x[/link]" in rendered
    assert "[link=https://evil.example]r1[/link]" in rendered
