"""Embedded PostgreSQL: a private cluster the collector creates, starts and stops itself.

Used when BINOME_DATABASE_URL is unset, so that `make run` and `make test` need no
database set-up. Layout under the data directory (default `<checkout>/.binome/`):

    pgdata/           the cluster (or a symlink to it, see below)
    postgresql.log    the server's log (or a symlink to it)
    password          the superuser's password, mode 0600
    port              the TCP port of the last start, tried first next time
    lock              serializes concurrent starts on this directory

The server listens on 127.0.0.1 only, with no Unix socket, and requires the password
(scram-sha-256) even there: other local users must not get in.

PostgreSQL refuses to run as root, so under root the cluster runs as an unprivileged
OS user (`postgres`, else a `binome` system user created for it). When that user cannot
reach the data directory (a checkout under /root, mode 700) we do not loosen the
permissions of the user's folders; the cluster lives in /var/lib/binome/<hash>/ instead
and the data directory holds symlinks to it. Likewise pgserver's binaries, when they sit
in a venv that user cannot enter, are copied to /var/lib/binome/pg<version>-<hash>/.
"""

from __future__ import annotations

import asyncio
import fcntl
import glob
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import asyncpg

log = logging.getLogger(__name__)

SUPERUSER = "binome"
DATABASE = "binome"
SYSTEM_ROOT = Path("/var/lib/binome")  # clusters and binaries root's run user could not reach
REQUIRED = ("initdb", "pg_ctl", "postgres")
# Where distributions and Homebrew put server binaries that are usually not on PATH.
SEARCH_GLOBS = [
    "/usr/lib/postgresql/*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/opt/homebrew/bin",
    "/usr/local/pgsql/bin",
]
INSTALL_HINT = (
    "Install them with one of: `pip install 'binome[embedded]'` (pgserver wheel), "
    "`apt-get install postgresql`, `brew install postgresql@16`, "
    "or set BINOME_DATABASE_URL to an existing server."
)
# Appended to postgresql.conf at initdb: a private server sized for a laptop.
# The port is not here: it is chosen at each start and passed on the command line.
SERVER_SETTINGS = """
# --- added by binome (collector/embedded.py) ---
listen_addresses = '127.0.0.1'      # loopback only
unix_socket_directories = ''        # no socket: its path could exceed ~107 characters
max_connections = 100
shared_buffers = 128MB
log_line_prefix = '%m [%p] '
"""
# Start failures worth another try: a port taken between our check and the server's
# bind, or a crashed server's children still holding its shared memory for a moment.
RETRYABLE = ("Address already in use", "pre-existing shared memory block")


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL cannot be found, initialized or started."""


# --- finding the binaries ------------------------------------------------------------


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in REQUIRED)


def _version_key(path: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", path)]


def _pgserver_bin() -> Path | None:
    """The pgserver wheel's bundled binaries, found without importing the package
    (importing it has side effects: platformdirs warnings, an atexit hook)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _candidates() -> Iterator[Path]:
    initdb = shutil.which("initdb")
    if initdb:
        yield Path(initdb).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip():
            yield Path(result.stdout.strip())
    for pattern in SEARCH_GLOBS:
        for match in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            yield Path(match)
    bundled = _pgserver_bin()
    if bundled is not None:
        yield bundled


def server_major(pg_bin: Path) -> str:
    """The major version of the server in pg_bin, as PG_VERSION spells it ("16")."""
    out = subprocess.run([str(pg_bin / "postgres"), "-V"], capture_output=True, text=True).stdout
    match = re.search(r"\(PostgreSQL\) (\d+)", out)
    if not match:
        raise EmbeddedPostgresError(f"cannot tell the version of {pg_bin / 'postgres'}: {out!r}")
    return match.group(1)


def find_pg_bin(major: str | None = None) -> Path:
    """Directory holding initdb, pg_ctl and postgres.

    BINOME_PG_BIN when set (and then nothing else); else initdb on PATH, pg_config
    --bindir, the usual install locations (highest version first), the pgserver wheel.
    With `major`, the first directory of that major version wins (an existing cluster
    only runs under its own major version); otherwise the first one found.
    """
    explicit = os.environ.get("BINOME_PG_BIN")
    if explicit:
        if _has_binaries(Path(explicit)):
            return Path(explicit)
        raise EmbeddedPostgresError(
            f"BINOME_PG_BIN={explicit} does not hold {', '.join(REQUIRED)}. {INSTALL_HINT}"
        )
    looked: list[str] = []
    found: list[Path] = []
    for candidate in _candidates():
        if str(candidate) in looked:
            continue
        looked.append(str(candidate))
        if _has_binaries(candidate):
            if major is None or server_major(candidate) == major:
                return candidate
            found.append(candidate)
    if found:
        return found[0]  # the caller reports the version mismatch
    raise EmbeddedPostgresError(
        f"No PostgreSQL server binaries found (looked in: {', '.join(looked) or 'nothing'}). "
        + INSTALL_HINT
    )


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _postmaster_alive(pgdata: Path) -> bool:
    """Whether postmaster.pid names a live postgres process. kill(pid, 0) alone is fooled
    by a crashed postmaster left as a zombie (in containers whose PID 1 reaps no orphans)
    and by a pid recycled for another program, so /proc is asked too where it exists."""
    pid = _postmaster_pid(pgdata)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass  # exists, another user's
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill() has to do
    command, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
    return command == "postgres" and state != "Z"


def _sweep_orphans() -> None:
    """Remove /var/lib/binome clusters whose data dir was under the temp dir and is gone.
    pytest's tmp_path lives under a mode-700 folder, so its clusters always land here and
    would leave ~50 MB per test session. Clusters of other data dirs are never touched."""
    temp = Path(tempfile.gettempdir()).resolve()
    for home in SYSTEM_ROOT.iterdir():
        try:
            data_dir = Path((home / "data_dir").read_text().strip())
        except OSError:
            continue
        if data_dir.is_relative_to(temp) and not data_dir.exists() \
                and not _postmaster_alive(home / "pgdata"):
            log.debug("removing %s, the cluster of %s which is gone", home, data_dir)
            shutil.rmtree(home, ignore_errors=True)


# --- the cluster ---------------------------------------------------------------------


class EmbeddedPostgres:
    """A private PostgreSQL cluster under `data_dir`; a context manager (start/stop)."""

    def __init__(self, data_dir: Path, *, pg_bin: Path | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self._requested_bin = Path(pg_bin) if pg_bin is not None else None
        self._url: str | None = None
        self._started = False  # only a server this object started is stopped by it
        # Settled by _prepare() at the first start:
        self._user: pwd.struct_passwd | None = None  # whom to run as; None: ourselves
        self._home: Path = self.data_dir  # the directory physically holding pgdata and log
        self._bin: Path | None = None

    # paths
    @property
    def pgdata(self) -> Path:
        return self._home / "pgdata"

    @property
    def log_file(self) -> Path:
        return self._home / "postgresql.log"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "password"

    @property
    def port_file(self) -> Path:
        return self.data_dir / "port"

    @property
    def port(self) -> int:
        """The TCP port of the running server (of the last start when stopped)."""
        return int(self.port_file.read_text().strip())

    @property
    def url(self) -> str:
        if self._url is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL has not been started")
        return self._url

    # lifecycle
    def start(self) -> str:
        """Initialize the cluster if needed, start it (or reuse a running one), make sure
        database `binome` exists; return its URL."""
        began = time.monotonic()
        with self._lock():
            self._prepare()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            if self.is_running():
                port = self._running_port()
                if not self._started:
                    log.debug("reusing the embedded PostgreSQL already running on port %d "
                             "(%s); it will be left running", port, self.pgdata)
            else:
                self._mark_stale_pid_file()
                port = self._launch()
                self._started = True
            self.port_file.write_text(f"{port}\n")
            password = quote(self.password_file.read_text().strip(), safe="")
            self._url = f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/{DATABASE}"
            self._ensure_database()
        # Routine, hence debug (issue 24: every command printed two lines about it);
        # `binome serve` names the database in its one line, one-shot commands say nothing.
        log.debug("embedded PostgreSQL ready on 127.0.0.1:%d in %.2f s (data %s, log %s)",
                 port, time.monotonic() - began, self.pgdata, self.log_file)
        return self._url

    def stop(self) -> None:
        """Stop the server if this object started it; a no-op otherwise."""
        if not self._started:
            return
        self._started = False
        result = self._run([self._tool("pg_ctl"), "stop", "-D", str(self.pgdata),
                            "-m", "fast", "-w", "-t", "60"], check=False)
        if result.returncode != 0 and self.is_running():
            raise EmbeddedPostgresError(f"pg_ctl stop failed: {result.stdout}{result.stderr}")
        log.debug("embedded PostgreSQL stopped (%s)", self.pgdata)

    def remove(self) -> None:
        """Stop (if this object started it) and delete the cluster and its files, including
        a /var/lib/binome home; other files in the data dir are left. For tests and resets."""
        self.stop()
        link = self.data_dir / "pgdata"
        if _postmaster_alive(link):
            raise EmbeddedPostgresError(f"a server still runs on {link}: not removing it")
        if link.is_symlink():
            target = link.resolve()
            shutil.rmtree(target, ignore_errors=True)
            if target.parent.parent == SYSTEM_ROOT:  # our home there, with the log
                shutil.rmtree(target.parent, ignore_errors=True)
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        for name in ("postgresql.log", "password", "port", "lock"):
            (self.data_dir / name).unlink(missing_ok=True)
        self._bin, self._home, self._url = None, self.data_dir, None

    def is_running(self) -> bool:
        """Whether a postmaster is alive on this cluster (ours or not)."""
        return _postmaster_alive(self.pgdata)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # set-up
    def _prepare(self) -> None:
        """Pick the binaries, the OS user and where the cluster lives (once)."""
        if self._bin is not None:
            return
        link = self.data_dir / "pgdata"
        # The binaries first, so that nothing is created when there are none.
        version_file = link / "PG_VERSION"
        major = version_file.read_text().strip() if version_file.exists() else None
        pg_bin = self._requested_bin or find_pg_bin(major)
        if not _has_binaries(pg_bin):
            raise EmbeddedPostgresError(f"{pg_bin} does not hold {', '.join(REQUIRED)}. "
                                        + INSTALL_HINT)
        if major is not None and server_major(pg_bin) != major:
            raise EmbeddedPostgresError(
                f"the cluster in {link} was created by PostgreSQL {major} but the binaries "
                f"in {pg_bin} are PostgreSQL {server_major(pg_bin)}: set BINOME_PG_BIN to a "
                f"PostgreSQL {major} bin directory, or remove {link} to start afresh")
        self._user = self._run_user(link) if os.geteuid() == 0 else None
        if self._user is not None and not self._user_can("-x", pg_bin / "postgres"):
            pg_bin = self._copy_binaries(pg_bin)

        if link.is_symlink():
            self._home = link.resolve().parent
        elif self._user is not None and not link.exists() and not self._user_can("-x",
                                                                                  self.data_dir):
            self._home = self._system_home()
            link.symlink_to(self.pgdata)
            if not (self.data_dir / "postgresql.log").exists():
                (self.data_dir / "postgresql.log").symlink_to(self.log_file)
            log.warning("user %s cannot reach %s (its permissions are left alone); the cluster "
                        "lives in %s, linked from %s", self._user.pw_name, self.data_dir,
                        self.pgdata, link)
        if not self.log_file.exists():
            self.log_file.touch(mode=0o600)
            self._give(self.log_file)
        self._bin = pg_bin

    def _run_user(self, link: Path) -> pwd.struct_passwd:
        """The unprivileged user root runs PostgreSQL as: the owner of an existing
        cluster, else `postgres`, else a `binome` system user created now."""
        if link.exists() and link.stat().st_uid != 0:
            return pwd.getpwuid(link.stat().st_uid)
        for name in ("postgres", "binome"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                pass
        useradd = shutil.which("useradd")
        if useradd is None:
            raise EmbeddedPostgresError(
                "running as root, PostgreSQL needs an unprivileged user and `useradd` is "
                "missing: create a `postgres` or `binome` user, or run as a normal user")
        subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        "binome"], check=True, capture_output=True)
        log.warning("created the system user `binome` to run the embedded PostgreSQL "
                    "(PostgreSQL refuses to run as root)")
        return pwd.getpwnam("binome")

    def _system_home(self) -> Path:
        """The home under /var/lib/binome of this data dir, which has no pgdata link yet."""
        SYSTEM_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
        _sweep_orphans()
        home = SYSTEM_ROOT / hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        if (home / "pgdata").exists() and not self.password_file.exists():
            # The data dir was deleted to start afresh; without its password the old
            # cluster is of no use to anyone.
            if _postmaster_alive(home / "pgdata"):
                raise EmbeddedPostgresError(f"a server still runs on {home / 'pgdata'}, the "
                                            f"cluster of a deleted {self.data_dir}: stop it")
            log.warning("removing %s, the cluster of a deleted %s", home, self.data_dir)
            shutil.rmtree(home)
        home.mkdir(mode=0o700, exist_ok=True)
        home.chmod(0o700)
        self._give(home)
        (home / "data_dir").write_text(f"{self.data_dir}\n")  # read by _sweep_orphans
        return home

    def _copy_binaries(self, pg_bin: Path) -> Path:
        """A relocatable install (pgserver's), copied where the run user can execute it: a
        venv under /root is out of its reach. The wheel's vendored libraries come along,
        at the same relative place (RPATH $ORIGIN/../../../pgserver.libs)."""
        install = pg_bin.parent  # .../site-packages/pgserver/pginstall
        package = install.parent  # .../site-packages/pgserver
        libs = package.with_name(package.name + ".libs")
        digest = hashlib.sha256(str(install).encode()).hexdigest()[:16]
        target = SYSTEM_ROOT / f"pg{server_major(pg_bin)}-{digest}"
        if not target.exists():
            assert self._user is not None
            log.warning("user %s cannot execute %s; copying %s to %s", self._user.pw_name,
                        pg_bin / "postgres", install, target)
            SYSTEM_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
            staging = target.with_name(f"{target.name}.tmp{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(install, staging / package.name / install.name, symlinks=True)
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            for directory, dirs, files in os.walk(staging):
                for name in [directory, *(os.path.join(directory, n) for n in dirs + files)]:
                    self._give(Path(name))
            os.rename(staging, target)  # whole or absent: a half copy never looks usable
        return target / package.name / install.name / pg_bin.name

    def _initdb(self) -> None:
        if not self.password_file.exists():  # kept if a previous initdb failed
            self.password_file.touch(mode=0o600)
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        self._give(self.pgdata)
        if any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(f"{self.pgdata} is not empty but holds no cluster "
                                        "(no PG_VERSION): remove it to start afresh")
        # initdb reads the password as the run user, who may not read the password file.
        pwfile = self._home / ".initdb-password"
        pwfile.touch(mode=0o600)
        self._give(pwfile)
        pwfile.write_text(self.password_file.read_text())
        began = time.monotonic()
        try:
            self._run([self._tool("initdb"), "-D", str(self.pgdata), "-U", SUPERUSER,
                       f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                       "--locale=C"])
        finally:
            pwfile.unlink()
        with (self.pgdata / "postgresql.conf").open("a") as conf:  # appending keeps its owner
            conf.write(SERVER_SETTINGS)
        log.debug("initialized a PostgreSQL %s cluster in %s in %.2f s",
                 (self.pgdata / "PG_VERSION").read_text().strip(), self.pgdata,
                 time.monotonic() - began)

    # running
    def _launch(self) -> int:
        """pg_ctl start on a free port; returns the port."""
        output = ""
        for attempt in range(3):
            port = self._free_port(prefer_saved=attempt == 0)
            log_offset = self.log_file.stat().st_size
            result = self._run([self._tool("pg_ctl"), "start", "-D", str(self.pgdata),
                                "-l", str(self.log_file), "-w", "-t", "60", "-o", f"-p {port}"],
                               check=False)
            if result.returncode == 0:
                return port
            output = (result.stdout + result.stderr).strip()
            new_log = self._read_log(log_offset)
            if not any(reason in new_log for reason in RETRYABLE):
                break
            time.sleep(1)
        raise EmbeddedPostgresError(
            f"PostgreSQL did not start (pg_ctl: {output}). Last lines of {self.log_file}:\n"
            + self._log_tail())

    def _free_port(self, *, prefer_saved: bool) -> int:
        """The port of the last run when it is free (stable URLs), else any free one."""
        saved = self.port_file.read_text().strip() if self.port_file.exists() else ""
        if prefer_saved and saved.isdigit() and int(saved) > 0:
            with socket.socket() as sock:
                # As the server binds: SO_REUSEADDR ignores TIME_WAIT leftovers of the last run.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", int(saved)))
                    return int(saved)
                except OSError:
                    pass
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def _mark_stale_pid_file(self) -> None:
        """postgres refuses to start while postmaster.pid names a live process, and a
        zombie or a recycled pid looks alive to it. We put our own pid there, which is
        pg_ctl's parent: postgres then takes the file for stale (PG_GRANDPARENT_PID) yet
        still checks that no backend of the crashed server holds its shared memory."""
        pid_file = self.pgdata / "postmaster.pid"
        pid = _postmaster_pid(self.pgdata)
        if pid is None:
            return
        log.warning("%s names pid %d, which is no running postmaster (a crash?): taken as "
                    "stale", pid_file, pid)
        lines = pid_file.read_text().split("\n")
        pid_file.write_text("\n".join([str(os.getpid()), *lines[1:]]))  # keeps its owner

    def _running_port(self) -> int:
        # postmaster.pid: pid, data dir, start time, port, socket dir, listen address, ...
        return int((self.pgdata / "postmaster.pid").read_text().splitlines()[3])

    def _ensure_database(self) -> None:
        # In a thread of its own: start() may be called while an event loop runs.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, self._create_database()).result()

    async def _create_database(self) -> None:
        admin_url = self.url.rsplit("/", 1)[0] + "/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = await asyncpg.connect(admin_url, timeout=5)
                break
            except (OSError, asyncpg.CannotConnectNowError, asyncio.TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise EmbeddedPostgresError(
                        f"the embedded PostgreSQL ({self.pgdata}) does not accept connections: "
                        f"{exc}. Last lines of {self.log_file}:\n" + self._log_tail()) from exc
                await asyncio.sleep(0.1)
            except asyncpg.InvalidPasswordError as exc:
                raise EmbeddedPostgresError(
                    f"the password in {self.password_file} does not open {self.pgdata}") from exc
        try:
            if not await conn.fetchval("select 1 from pg_database where datname = $1", DATABASE):
                try:
                    await conn.execute(f'create database "{DATABASE}"')
                except asyncpg.DuplicateDatabaseError:  # created concurrently
                    pass
        finally:
            await conn.close()

    # helpers
    @contextmanager
    def _lock(self) -> Iterator[None]:
        """One start at a time per data dir, across processes (two `binome` commands)."""
        if not self.data_dir.exists():
            # Under root the run user must be able to traverse it; its secrets (password)
            # are protected file by file. Otherwise nobody else needs in.
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.data_dir.chmod(0o755 if os.geteuid() == 0 else 0o700)
        with open(self.data_dir / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _tool(self, name: str) -> str:
        assert self._bin is not None, "_prepare() first"
        return str(self._bin / name)

    def _as_user(self) -> dict[str, Any]:
        """subprocess arguments that drop root's privileges to the run user."""
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid,
                "extra_groups": os.getgrouplist(self._user.pw_name, self._user.pw_gid)}

    def _user_can(self, flag: str, path: Path) -> bool:
        """`test FLAG PATH` as the run user: the kernel's answer, ACLs included."""
        test = shutil.which("test") or "/usr/bin/test"
        return subprocess.run([test, flag, str(path)], cwd="/", **self._as_user()).returncode == 0

    def _give(self, path: Path) -> None:
        """Hand a file we (root) created to the run user."""
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid, follow_symlinks=False)

    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        # PG* variables (PGDATA, PGPORT, ...) would override what we pass; the session of
        # its own keeps a Ctrl-C in the terminal from reaching the postmaster.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=self._home,
                                start_new_session=True, timeout=120, **self._as_user())
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} failed ({result.returncode}): "
                f"{(result.stdout + result.stderr).strip()}")
        return result

    def _read_log(self, offset: int = 0) -> str:
        try:
            with self.log_file.open("rb") as handle:
                handle.seek(offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def _log_tail(self, lines: int = 20) -> str:
        return "\n".join(self._read_log().splitlines()[-lines:])
