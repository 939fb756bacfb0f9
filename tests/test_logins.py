"""`binome dsn` and `binome psql` (collector/logins.py, issue 24): a way in for
analysts on the embedded PostgreSQL, with no password in a printed URL."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from collector.embedded import EmbeddedPostgres

BINOME = [sys.executable, "-m", "collector.cli"]


def binome(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BINOME, *args], env=env, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, dict[str, str]]]:
    """A running embedded PostgreSQL under a fresh data dir, and the environment of a
    `binome` command that uses it (no BINOME_DATABASE_URL)."""
    data_dir = tmp_path / "binome"
    env = {k: v for k, v in os.environ.items() if k != "BINOME_DATABASE_URL"}
    env["BINOME_DATA_DIR"] = str(data_dir)
    pg = EmbeddedPostgres(data_dir)
    pg.start()
    try:
        yield pg, env
    finally:
        pg.remove()


def secrets_of(data_dir: Path) -> list[str]:
    """Every password the data dir holds: the owner's and those of the logins."""
    found = [(data_dir / "password").read_text().strip()]
    passfile = data_dir / "pgpass"
    if passfile.exists():
        found += [line.rsplit(":", 1)[1] for line in passfile.read_text().splitlines()
                  if not line.startswith("#")]
    return found


async def test_dsn_analyst_logs_in_as_binome_analyst_without_a_password_in_the_url(
    embedded: tuple[EmbeddedPostgres, dict[str, str]]
) -> None:
    pg, env = embedded
    done = binome("dsn", "--analyst", env=env)
    assert done.returncode == 0, done.stderr
    dsn = done.stdout.strip()
    assert dsn.startswith("postgresql://binome_analyst@127.0.0.1:") and "\n" not in dsn
    for secret in secrets_of(pg.data_dir):
        assert secret not in done.stdout and secret not in done.stderr
    assert done.stderr == ""  # the server runs (as under `binome serve`): nothing to add
    passfile = pg.data_dir / "pgpass"
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    # The printed URL is all a client needs: libpq (and asyncpg) read the password file.
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT current_user") == "binome_analyst"
        assert await conn.fetchval("SELECT count(*) FROM rum.scorecard_daily") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM binome.beacons")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # rows: analyst_rows only
            await conn.fetchval("SELECT count(*) FROM rum.page_views_enriched")
    finally:
        await conn.close()
    # A second call keeps the same login working (a DSN given out stays valid).
    assert binome("dsn", "--analyst", env=env).stdout.strip() == dsn
    conn = await asyncpg.connect(dsn)
    await conn.close()


async def test_dsn_defaults_to_the_owner_and_analyst_rows_reads_rows(
    embedded: tuple[EmbeddedPostgres, dict[str, str]]
) -> None:
    _, env = embedded
    owner = binome("dsn", env=env)
    assert owner.returncode == 0, owner.stderr
    rows = binome("dsn", "--analyst-rows", env=env)
    assert rows.returncode == 0, rows.stderr
    for dsn, user in ((owner.stdout.strip(), "binome"),
                      (rows.stdout.strip(), "binome_analyst_rows")):
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT current_user") == user
            assert await conn.fetchval("SELECT count(*) FROM rum.page_views_enriched") == 0
        finally:
            await conn.close()


def test_psql_runs_as_the_analyst(embedded: tuple[EmbeddedPostgres, dict[str, str]]) -> None:
    _, env = embedded
    if shutil.which("psql") is None and "CI" not in os.environ:
        pytest.skip("no psql on this machine")
    done = binome("psql", "--analyst", "--", "-tA", "-c", "SELECT current_user", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "binome_analyst"
    assert done.stderr == ""  # quiet: nothing about the embedded PostgreSQL


def test_psql_starts_and_stops_the_embedded_postgresql(tmp_path: Path) -> None:
    if shutil.which("psql") is None and "CI" not in os.environ:
        pytest.skip("no psql on this machine")
    data_dir = tmp_path / "binome"
    env = {k: v for k, v in os.environ.items() if k != "BINOME_DATABASE_URL"}
    env["BINOME_DATA_DIR"] = str(data_dir)
    try:
        done = binome("psql", "--", "-tA", "-c", "SELECT current_user", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "binome"
        assert not EmbeddedPostgres(data_dir).is_running()
        stopped = binome("dsn", env=env)
        assert stopped.returncode == 0 and "runs while `binome serve`" in stopped.stderr
    finally:
        EmbeddedPostgres(data_dir).remove()


def test_dsn_of_a_configured_server_never_prints_its_password() -> None:
    env = {**os.environ, "BINOME_DATABASE_URL": "postgresql://writer:s3cr%3At@db.internal:5432/rum"}
    done = binome("dsn", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "postgresql://writer@db.internal:5432/rum"
    assert "s3cr" not in done.stdout + done.stderr
    env["BINOME_DASHBOARD_DATABASE_URL"] = "postgresql://binome_analyst:p4ss%40w0rd@db.internal/rum"
    analyst = binome("dsn", "--analyst", env=env)
    assert analyst.stdout.strip() == "postgresql://binome_analyst@db.internal/rum"
    assert "p4ss" not in analyst.stdout + analyst.stderr


def test_dsn_analyst_without_a_configured_login_says_so() -> None:
    env = {k: v for k, v in os.environ.items() if k != "BINOME_DASHBOARD_DATABASE_URL"}
    env["BINOME_DATABASE_URL"] = "postgresql://writer@db.internal/rum"
    done = binome("dsn", "--analyst", env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "BINOME_DASHBOARD_DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr
