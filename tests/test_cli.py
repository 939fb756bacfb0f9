"""The `binome` command (README), run as a real subprocess."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from collector.cli import build_parser
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
        # Quiet (issue 24): one short line names the embedded PostgreSQL, and no routine
        # log line does (a warning may: under root, a data dir its user cannot reach).
        assert process.stdout is not None
        about_it = [line for line in process.stdout.read().decode().splitlines()
                    if "embedded" in line.lower() and '"level":"warning"' not in line]
        assert len(about_it) == 1 and about_it[0].startswith("binome: serving on"), about_it
        assert len(about_it[0]) < 160
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


# --- issue 24: settings that refuse to guess, help for every option, quiet commands ---

def _without_database_url(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BINOME_DATABASE_URL"}
    return {**env, "BINOME_DATA_DIR": str(tmp_path / "binome"), **extra}


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BINOME, *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
                 ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command line's parser: (("serve",), ...), (("site", "add"), ...) ..."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subcommands(sub, (*path, name))


# The arguments each command needs to get past argparse.
REQUIRED_ARGS = {("site", "add"): ["shop"], ("objective", "add"): ["shop", "lcp_p75", "2500"],
                 ("objective", "remove"): ["shop-lcp_p75"], ("site", "remove"): ["shop"]}
COMMANDS = [path for path, sub in _subcommands(build_parser())
            if not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)]


def test_every_option_of_every_command_has_help() -> None:
    assert ("serve",) in COMMANDS and ("dsn",) in COMMANDS and ("psql",) in COMMANDS
    for path, sub in _subcommands(build_parser()):
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help and len(action.help) > 10, (path, action.dest)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_bad_value_is_one_line_and_exit_2_for_every_command(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = _without_database_url(tmp_path, BINOME_RATE_LIMIT_PER_MINUTE="lots")
    done = _run(env, *command, *REQUIRED_ARGS.get(command, []))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("binome: BINOME_RATE_LIMIT_PER_MINUTE: invalid value")
    assert "whole number" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "binome").exists()  # refused before anything started


def test_a_mistyped_database_url_is_refused_naming_the_setting(tmp_path: Path) -> None:
    """Issue 24: the typo served from the embedded PostgreSQL, the data piling up
    in a checkout's .binome/."""
    env = _without_database_url(tmp_path, BINOME_DATABSE_URL="postgresql://u@db.internal/rum")
    done = _run(env, "serve", "--port", str(free_port()))
    assert done.returncode == 2
    assert "BINOME_DATABSE_URL is not a setting (did you mean BINOME_DATABASE_URL?)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "binome").exists()


def test_serve_on_a_public_address_never_uses_the_embedded_postgresql(tmp_path: Path) -> None:
    env = _without_database_url(tmp_path)
    done = _run(env, "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert done.returncode == 2
    assert "set BINOME_DATABASE_URL" in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "binome").exists()
    via_setting = _run({**env, "BINOME_HOST": "192.0.2.10"}, "serve")
    assert via_setting.returncode == 2 and "set BINOME_DATABASE_URL" in via_setting.stderr


def test_one_shot_commands_print_nothing_about_the_embedded_postgresql() -> None:
    # A directory every user can traverse: under root, pytest's tmp_path (mode 700) earns
    # a warning that the cluster lives elsewhere, which is not what this test is about.
    tmp_path = Path(tempfile.mkdtemp(prefix="binome-quiet-"))
    tmp_path.chmod(0o755)
    env = _without_database_url(tmp_path, COLUMNS="120")
    try:
        for _ in range(2):  # the first run creates the cluster and migrates: quiet too
            done = _run(env, "report")
            assert done.returncode == 0, done.stderr
            assert done.stderr == ""
            assert "Shared scorecard" in done.stdout
        # Asked for, the logs come back.
        loud = _run({**env, "BINOME_LOG_LEVEL": "debug"}, "report")
        assert "embedded PostgreSQL ready" in loud.stderr
    finally:
        from collector.embedded import EmbeddedPostgres

        EmbeddedPostgres(tmp_path / "binome").remove()
        shutil.rmtree(tmp_path, ignore_errors=True)
