"""The embedded PostgreSQL, with real clusters (never the shared server on 5432).

Every cluster a test starts is stopped at teardown, even when the test fails, and
whatever a test puts under /var/lib/binome (root's fallback) is removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from collector import embedded
from collector.embedded import EmbeddedPostgres, EmbeddedPostgresError, find_pg_bin
from tests.conftest import require

ROOT = os.geteuid() == 0
URL = re.compile(r"postgresql://binome:[A-Za-z0-9_%-]+@127\.0\.0\.1:(\d+)/binome")


def query(url: str, sql: str) -> Any:
    """The first value of one query (asyncpg, as the collector connects)."""
    async def run() -> Any:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def execute(url: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def postmaster_pid_of(lock_file: str) -> int:
    return int(lock_file.splitlines()[0])


def postmaster_pid(pg: EmbeddedPostgres) -> int:
    return postmaster_pid_of((pg.pgdata / "postmaster.pid").read_text())


def alive(pid: int) -> bool:
    """Running: not gone and not a zombie (this machine's PID 1 may not reap orphans)."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), f"postmaster {pid} still alive"


def system_home(data_dir: Path) -> Path:
    return embedded.SYSTEM_ROOT / hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]


@pytest.fixture
def cluster() -> Iterator[Callable[..., EmbeddedPostgres]]:
    """Make EmbeddedPostgres objects; at teardown stop them all, end (by pid) any
    postmaster still running on their data dirs, and remove the clusters (with their
    /var/lib/binome homes)."""
    made: list[EmbeddedPostgres] = []

    def make(data_dir: Path, **kwargs: Any) -> EmbeddedPostgres:
        pg = EmbeddedPostgres(data_dir, **kwargs)
        made.append(pg)
        return pg

    yield make
    for pg in made:
        try:
            pg.stop()
        except EmbeddedPostgresError:
            pass
    for pg in made:
        pid_file = pg.data_dir / "pgdata" / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().splitlines()[0])
            if alive(pid):
                os.kill(pid, signal.SIGINT)  # fast shutdown
                wait_gone(pid)
    for pg in made:
        EmbeddedPostgres(pg.data_dir).remove()
        shutil.rmtree(system_home(pg.data_dir), ignore_errors=True)  # data dir deleted by the test


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can traverse (pytest's tmp_path is under a mode-700 one)."""
    path = Path(tempfile.mkdtemp(prefix="binome-embedded-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def traversable_by_all(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def test_start_connect_stop_and_restart_keeps_the_data(
    cluster: Callable[..., EmbeddedPostgres], open_dir: Path
) -> None:
    data = open_dir / "data"
    pg = cluster(data)
    with pytest.raises(EmbeddedPostgresError):
        pg.url  # noqa: B018 - not started yet
    pg.stop()  # not started: a no-op

    url = pg.start()
    match = URL.fullmatch(url)
    assert match, url
    assert pg.url == url
    assert query(url, "select 1") == 1
    assert query(url, "select current_database()") == "binome"
    execute(url, "create table kept (x int); insert into kept values (42)")

    port = int(match.group(1))
    assert (data / "port").read_text().strip() == str(port)
    assert stat.S_IMODE((data / "password").stat().st_mode) == 0o600
    assert query(url, "show listen_addresses") == "127.0.0.1"
    assert query(url, "show unix_socket_directories") == ""
    owner = pg.pgdata.stat().st_uid
    if ROOT:  # PostgreSQL runs as an unprivileged user that owns the cluster
        assert owner != 0 and pwd.getpwuid(owner).pw_name in ("postgres", "binome")
        if traversable_by_all(open_dir):  # reachable by that user: kept in place
            assert not (data / "pgdata").is_symlink()
    else:
        assert owner == os.geteuid()
    assert stat.S_IMODE(pg.pgdata.stat().st_mode) == 0o700

    pid = postmaster_pid(pg)
    pg.stop()
    assert not alive(pid)
    assert not (pg.pgdata / "postmaster.pid").exists()
    with pytest.raises(OSError):
        query(url, "select 1")
    pg.stop()  # idempotent

    # A new run on the same directory: same password, same port (free again), same data.
    with cluster(data) as again:
        assert again.url == url
        assert query(again.url, "select x from kept") == 42
    with pytest.raises(OSError):
        query(url, "select 1")
    assert "database system is shut down" in (data / "postgresql.log").read_text()


def test_start_twice_and_reuse_of_a_running_server(
    cluster: Callable[..., EmbeddedPostgres], tmp_path: Path
) -> None:
    first = cluster(tmp_path / "data")
    url = first.start()
    pid = postmaster_pid(first)
    assert first.start() == url and postmaster_pid(first) == pid  # idempotent

    second = cluster(tmp_path / "data")  # e.g. `binome report` while `binome serve` runs
    assert second.start() == url and postmaster_pid(second) == pid
    second.stop()  # it did not start the server: leaves it running
    assert query(url, "select 1") == 1

    first.stop()
    assert not alive(pid)


def test_stale_postmaster_pid_after_a_crash(
    cluster: Callable[..., EmbeddedPostgres], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crashed = cluster(tmp_path / "data")
    url = crashed.start()
    execute(url, "create table kept (x int); insert into kept values (7)")
    pid = postmaster_pid(crashed)
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    assert (crashed.pgdata / "postmaster.pid").exists()  # left behind

    recovered = cluster(tmp_path / "data")
    assert recovered.start() == url
    assert postmaster_pid(recovered) != pid
    assert query(url, "select x from kept") == 7
    assert f"names pid {pid}, which is no running postmaster" in caplog.text
    lock_file = (recovered.pgdata / "postmaster.pid").read_text()
    recovered.stop()

    def stale_lock(pid: int) -> None:
        (recovered.pgdata / "postmaster.pid").write_text(
            lock_file.replace(str(postmaster_pid_of(lock_file)), str(pid), 1))

    # A lock file naming a pid that is simply gone (reaped).
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale_lock(gone.pid)
    assert recovered.start() == url
    assert query(url, "select x from kept") == 7
    recovered.stop()

    # A lock file naming a pid recycled for another program of the cluster's user.
    owner = recovered.pgdata.stat().st_uid
    other = subprocess.Popen(["sleep", "30"], user=owner, group=os.getegid() if not ROOT
                             else pwd.getpwuid(owner).pw_gid)
    try:
        stale_lock(other.pid)
        assert recovered.start() == url
        assert query(url, "select x from kept") == 7
        recovered.stop()
    finally:
        other.kill()
        other.wait()


def test_concurrent_starts_share_one_server(
    cluster: Callable[..., EmbeddedPostgres], tmp_path: Path
) -> None:
    """Two `binome` commands starting at once: one initdb, one server."""
    both = [cluster(tmp_path / "data"), cluster(tmp_path / "data")]
    with ThreadPoolExecutor(2) as pool:
        urls = list(pool.map(lambda pg: pg.start(), both))
    assert urls[0] == urls[1]
    assert sum(pg._started for pg in both) == 1
    assert query(urls[0], "select 1") == 1


def test_a_data_dir_the_run_user_cannot_reach(
    cluster: Callable[..., EmbeddedPostgres], tmp_path: Path
) -> None:
    """As root: a checkout under a mode-700 folder (like /root) keeps its cluster in
    /var/lib/binome/<hash>/, and the folder's permissions are left alone."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    data = private / "data"
    pg = cluster(data)
    url = pg.start()
    execute(url, "create table t (x int)")
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    if ROOT:
        home = system_home(data)
        assert (data / "pgdata").is_symlink()
        assert (data / "pgdata").resolve() == home / "pgdata" == pg.pgdata
        assert (data / "postgresql.log").resolve() == home / "postgresql.log"
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert home.stat().st_uid == pg.pgdata.stat().st_uid != 0
        assert stat.S_IMODE((data / "password").stat().st_mode) == 0o600
        assert (data / "password").stat().st_uid == 0
    else:  # we own the folder: nothing to work around
        assert not (data / "pgdata").is_symlink()
    pg.stop()
    with cluster(data) as again:  # found again through the symlink
        assert query(again.url, "select count(*) from t") == 0
    again.remove()
    assert not (data / "pgdata").exists() and not (data / "pgdata").is_symlink()
    if ROOT:
        assert not system_home(data).exists()


def test_deleting_the_data_dir_starts_afresh_and_leaves_nothing_behind(
    cluster: Callable[..., EmbeddedPostgres], tmp_path: Path
) -> None:
    """`rm -rf .binome` starts afresh; as root, the /var/lib/binome cluster of a deleted
    data dir under the temp dir (pytest's tmp_path) is swept at the next fallback."""
    data, other = tmp_path / "data", tmp_path / "other"
    with cluster(data) as pg:
        execute(pg.url, "create table t (x int)")
        old_url = pg.url
    with cluster(other):
        pass
    shutil.rmtree(data)
    shutil.rmtree(other)
    with cluster(data) as fresh:
        assert fresh.url != old_url  # a new password
        assert query(fresh.url, "select to_regclass('t') is null") is True
    if ROOT:
        assert system_home(data).exists() and not system_home(other).exists()


def test_start_failure_shows_the_server_log(
    cluster: Callable[..., EmbeddedPostgres], tmp_path: Path
) -> None:
    pg = cluster(tmp_path / "data")
    pg.start()
    pg.stop()
    with (pg.pgdata / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = 'lots'\n")
    with pytest.raises(EmbeddedPostgresError) as error:
        pg.start()
    assert "Last lines of" in str(error.value) and "shared_buffers" in str(error.value)


def test_no_binaries_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BINOME_PG_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(embedded, "SEARCH_GLOBS", [str(tmp_path / "nothing" / "*" / "bin")])
    monkeypatch.setattr(embedded, "_pgserver_bin", lambda: None)
    with pytest.raises(EmbeddedPostgresError) as error:
        find_pg_bin()
    message = str(error.value)
    assert message.startswith("No PostgreSQL server binaries found")
    for advice in ("pip install 'binome[embedded]'", "apt-get install postgresql",
                   "brew install postgresql@16", "BINOME_DATABASE_URL"):
        assert advice in message
    with pytest.raises(EmbeddedPostgresError, match="No PostgreSQL server binaries"):
        EmbeddedPostgres(tmp_path / "data").start()

    monkeypatch.setenv("BINOME_PG_BIN", "/nonexistent")
    with pytest.raises(EmbeddedPostgresError) as error:
        find_pg_bin()
    assert "BINOME_PG_BIN=/nonexistent" in str(error.value)
    assert "apt-get install postgresql" in str(error.value)


def test_find_pg_bin(monkeypatch: pytest.MonkeyPatch) -> None:
    found = find_pg_bin()
    assert all((found / name).exists() for name in ("initdb", "pg_ctl", "postgres"))
    monkeypatch.setenv("BINOME_PG_BIN", str(found))
    assert find_pg_bin() == found


def pgserver_bin() -> Path:
    bundled = embedded._pgserver_bin()
    require(bundled is not None and bundled.is_dir(), "pgserver (binome[embedded]) not installed")
    assert bundled is not None
    return bundled


def test_pgserver_binaries_run_a_cluster(
    cluster: Callable[..., EmbeddedPostgres], tmp_path: Path
) -> None:
    bundled = pgserver_bin()
    data = tmp_path / "data"
    pg = cluster(data, pg_bin=bundled)
    url = pg.start()
    major = embedded.server_major(bundled)
    assert query(url, "show server_version_num").startswith(major)
    pg.stop()

    # Without pg_bin, a cluster is started by binaries of its own major version, even
    # when another version comes first in the search (Debian's on this machine).
    with cluster(data) as again:
        assert query(again.url, "show server_version_num").startswith(major)
    other = [p for p in embedded._candidates() if embedded._has_binaries(p)
             and embedded.server_major(p) != major]
    if other:
        with pytest.raises(EmbeddedPostgresError, match=f"created by PostgreSQL {major}"):
            cluster(data, pg_bin=other[0]).start()


def test_pgserver_binaries_out_of_the_run_users_reach(
    cluster: Callable[..., EmbeddedPostgres], tmp_path: Path
) -> None:
    """As root with a venv under a mode-700 folder, pgserver's binaries are copied (with
    the wheel's vendored libraries) to /var/lib/binome for the run user."""
    bundled = pgserver_bin()
    site = tmp_path / "private" / "site-packages"
    site.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)
    shutil.copytree(bundled.parent, site / "pgserver" / "pginstall", symlinks=True)
    libs = bundled.parent.parent.with_name("pgserver.libs")
    if libs.is_dir():
        shutil.copytree(libs, site / "pgserver.libs", symlinks=True)
    private_bin = site / "pgserver" / "pginstall" / "bin"
    digest = hashlib.sha256(str(private_bin.parent).encode()).hexdigest()[:16]
    copy = embedded.SYSTEM_ROOT / f"pg{embedded.server_major(private_bin)}-{digest}"
    try:
        pg = cluster(tmp_path / "data", pg_bin=private_bin)
        assert query(pg.start(), "select 1") == 1
        assert copy.is_dir() == ROOT
        pg.stop()
    finally:
        shutil.rmtree(copy, ignore_errors=True)
