#!/usr/bin/env python3
"""Ingest benchmark: the collector against a bare endpoint and two reference designs.

    .venv/bin/python bench/ingest.py                 # full run (about 4 minutes)
    .venv/bin/python bench/ingest.py --quick         # smoke run, ~2 s per design
    .venv/bin/python bench/ingest.py --designs bare,collector --rounds 5
    .venv/bin/python bench/ingest.py --designs bare,collector --baseline main

See bench/README.md for what is measured and how to read the figures.

One run: a fresh database `binome_bench_<random>` on the PostgreSQL server of
--server-url (migrated with `binome migrate`, site `demo` registered), and one
more for --baseline's worktree of another revision, migrated by its own code;
then for each round and each design (the order rotates every round): start the
design's server (uvicorn, no access log, pinned with taskset to --server-cpu
unless the design has several workers), warm it up, load it with wrk (pinned to
--load-cpu) posting distinct ~1 KB beacons, wait until what it accepted is in
PostgreSQL, stop it, and check the rows against wrk's count of 2xx answers. The
databases and the worktree are removed at the end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LUA_SCRIPT = BENCH_DIR / "wrk_beacons.lua"

try:
    import asyncpg
    import orjson
    import psutil
except ImportError as exc:  # pragma: no cover - a usage error, not a bug
    sys.exit(f"bench/ingest.py: {exc}. Run it with the project's venv: .venv/bin/python "
             "bench/ingest.py (after `make test` or `pip install -e '.[test]'`).")

# A limit no single client reaches in a run, so the rate limiter runs (it hashes
# every client address) but never refuses: all of wrk's requests come from
# 127.0.0.1, and the default 600/min would answer 429 to nearly all of them.
BENCH_RATE_LIMIT = 1_000_000_000


@dataclass(frozen=True)
class Design:
    name: str
    app: str                 # uvicorn factory
    workers: int
    table: str | None        # where its accepted beacons land (None: nowhere)
    about: str
    # The checkout whose code a collector design runs (--baseline: a worktree
    # of another revision, with its own database).
    root: Path = ROOT
    # Environment of its own (the collector's two acceptance modes, issue 23).
    env: tuple[tuple[str, str], ...] = ()

    @property
    def collector(self) -> bool:
        return self.app.startswith("collector.")


DESIGNS: dict[str, Design] = {d.name: d for d in (
    Design("bare", "reference_apps:bare_app", 1, None,
           "Starlette endpoint that reads the body and answers 204"),
    Design("collector", "collector.app:create_app", 1, "binome.beacons",
           "the full collector: validation, rate limit, enrichment, batching, COPY;"
           " BINOME_DURABLE=false (a 204 once queued in memory)",
           env=(("BINOME_DURABLE", "false"),)),
    Design("collector-durable", "collector.app:create_app", 1, "binome.beacons",
           "the full collector with BINOME_DURABLE=true (a 204 once fsynced in the log,"
           " group commit)", env=(("BINOME_DURABLE", "true"),)),
    Design("insert", "reference_apps:insert_app", 1, "bench_ref.beacons",
           "reference: pydantic + one INSERT per request (asyncpg pool of 8)"),
    Design("minibatch", "reference_apps:minibatch_app", 1, "bench_ref.beacons",
           "reference: pydantic + list + COPY every 200 ms / 500 rows, no enrichment"),
    Design("collector-w2", "collector.app:create_app", 2, "binome.beacons",
           "the full collector, uvicorn --workers 2, not pinned (shares cores with wrk)"),
    Design("minibatch-w2", "reference_apps:minibatch_app", 2, "bench_ref.beacons",
           "reference minimal batch, --workers 2, not pinned"),
    Design("bare-w2", "reference_apps:bare_app", 2, None,
           "bare endpoint, --workers 2, not pinned"),
)}
DEFAULT_DESIGNS = ("bare", "collector", "collector-durable", "insert", "minibatch",
                   "collector-w2")


# -- beacons -------------------------------------------------------------------

MOBILE_USER_AGENTS = (
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36"),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Mobile Safari/537.36"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"),
    "Mozilla/5.0 (Android 14; Mobile; rv:132.0) Gecko/132.0 Firefox/132.0",
    ("Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.6778.81 Mobile Safari/537.36"),
)
COUNTRIES = ("FR", "FR", "FR", "BE", "CH", "DE", "ES", "IT", "CA", "US")
CAMPAIGNS = (  # (utm_source, utm_medium, utm_campaign, referrer)
    ("newsletter", "email", "black-friday", "https://mail.google.com/"),
    ("google", "cpc", "brand-fr", "https://www.google.com/"),
    ("facebook", "paid_social", "retargeting-q4", "https://m.facebook.com/"),
    ("instagram", "social", "influencers", "https://l.instagram.com/"),
    ("partner", "referral", "affiliate-42", "https://blog.partner.example/review"),
    ("bing", "cpc", "generic-shoes", "https://www.bing.com/"),
)
PAGES = ("/", "/c/shoes", "/c/bags", "/p/42", "/p/1337", "/p/2048", "/cart", "/checkout")
PV_PLACEHOLDER = "@@PV@@"
SID_PLACEHOLDER = "@@SID@@"


def make_template(rng: random.Random, now_ms: float) -> tuple[str, str, str, str, str]:
    """One ~1 KB beacon as the snippet sends it, split around its `pv` and `sid`."""
    user_agent = rng.choice(MOBILE_USER_AGENTS)
    source, medium, campaign, ref = rng.choice(CAMPAIGNS)
    page = rng.choice(PAGES)
    page_type = ("home" if page == "/" else "category" if page.startswith("/c/")
                 else "product" if page.startswith("/p/") else "checkout")
    lcp = round(rng.lognormvariate(7.6, 0.45), 1)
    fcp = round(lcp * rng.uniform(0.45, 0.9), 1)
    ttfb = round(fcp * rng.uniform(0.2, 0.5), 1)
    inp = float(rng.choice((24, 48, 64, 96, 120, 176, 232, 312)))
    cls = round(rng.choice((0.0, 0.01, 0.04, 0.08, 0.12, 0.3)), 4)
    loaded_ms = int(now_ms - rng.uniform(0, 3_600_000))

    def metric(name: str, value: float, good: float, target: str | None = None) -> dict[str, Any]:
        report = {"name": name, "value": value,
                  "id": f"v5-{loaded_ms}-{rng.randrange(10**12, 9 * 10**12)}", "delta": value,
                  "rating": "good" if value <= good else "needs-improvement",
                  "navigationType": "navigate"}
        if target:
            report["attribution"] = {"target": target}
        return report

    beacon: dict[str, Any] = {
        "v": 1,
        "consent": "marketing",
        "site": "demo",
        "pv": PV_PLACEHOLDER,
        "seq": 0,
        "t0": round(now_ms - rng.uniform(1_000, 120_000), 1),
        "sid": SID_PLACEHOLDER,
        "url": f"https://shop.example{page}?utm_source={source}&utm_medium={medium}"
               f"&utm_campaign={campaign}&utm_content=hero-{rng.randrange(1, 4)}",
        "ref": ref,
        "release": "2026.11.3",
        "dims": {"page_type": page_type, "ab_variant": rng.choice("AB")},
        # Safari has neither navigator.deviceMemory nor navigator.connection
        "device": ({"vw": 390, "vh": 844, "dpr": 3, "cpus": 6} if "iPhone" in user_agent else
                   {"vw": 412, "vh": 915, "dpr": 2.625, "mem": 8, "cpus": 8, "ect": "4g",
                    "rtt": rng.choice((50, 100, 150)), "downlink": 10, "save_data": False}),
        "nav": {"type": "navigate", "dns": rng.randrange(0, 40), "connect": 30, "tls": 18,
                "ttfb": round(ttfb), "dom_interactive": round(fcp * 1.2),
                "dcl": round(fcp * 1.3), "load": round(lcp * 1.4), "transfer_size": 48213,
                "protocol": "h2"},
        # as js-snippet/src/payload.js sends them: web-vitals 5 fields, and an
        # attribution target (a CSS selector) where the metric points at an element
        "metrics": [
            metric("TTFB", ttfb, 800), metric("FCP", fcp, 1800),
            metric("LCP", lcp, 2500, "main>picture>img.hero"),
            metric("CLS", cls, 0.1, "div.promo-banner" if cls else None),
            metric("INP", inp, 200, "button#add-to-cart"),
        ],
    }
    if rng.random() < 0.05:
        beacon["events"] = [{"name": "purchase", "value": 49.9, "currency": "EUR"}]
    text = orjson.dumps(beacon).decode()
    before, rest = text.split(f'"{PV_PLACEHOLDER}"')
    between, after = rest.split(f'"{SID_PLACEHOLDER}"')
    return user_agent, rng.choice(COUNTRIES), before + '"', '"' + between + '"', '"' + after


def write_beacon_file(path: Path, count: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    now_ms = time.time() * 1000
    sizes = []
    with path.open("w") as out:
        for _ in range(count):
            fields = make_template(rng, now_ms)
            assert all("\t" not in f and "\n" not in f for f in fields)
            out.write("\t".join(fields) + "\n")
            # a pv and a sid of the length a run gives them: 6-char tag, thread, counter
            sizes.append(sum(map(len, fields[2:])) + len("abcdef_0_123456")
                         + len("abcdef_0_s12345"))
    return {"templates": count, "body_bytes_mean": round(statistics.mean(sizes)),
            "body_bytes_min": min(sizes), "body_bytes_max": max(sizes)}


# -- PostgreSQL ------------------------------------------------------------------

class Db:
    """A synchronous face on one asyncpg connection (the bench itself is not async)."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._conn = self._loop.run_until_complete(
            asyncpg.connect(url, server_settings={"application_name": "binome-bench"}))

    def val(self, sql: str, *args: Any) -> Any:
        return self._loop.run_until_complete(self._conn.fetchval(sql, *args))

    def rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return self._loop.run_until_complete(self._conn.fetch(sql, *args))

    def execute(self, sql: str, *args: Any) -> None:
        self._loop.run_until_complete(self._conn.execute(sql, *args))

    def close(self) -> None:
        self._loop.run_until_complete(self._conn.close())
        self._loop.close()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


# -- processes -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(root: Path = ROOT, **extra: str) -> dict[str, str]:
    """The environment without any BINOME_* of the caller's, the code of checkout
    `root` first on the path (ahead of the venv's editable install of ROOT, which
    is a finder appended to sys.meta_path), plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BINOME_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), str(BENCH_DIR),
                                                      os.environ.get("PYTHONPATH", "")]))
    if root != ROOT:
        env.update(BINOME_SQL_DIR=str(root / "sql"),
                   BINOME_SNIPPET_PATH=str(root / "js-snippet" / "dist" / "binome.js"))
    env.update(extra)
    return env


class Server:
    """One design's uvicorn, in its own process group."""

    def __init__(self, design: Design, cpus: str, env: dict[str, str], log_path: Path) -> None:
        self.design = design
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        if design.collector:
            # The collector as it is deployed: `binome serve`, with its uvicorn
            # options and the periodic maintenance.
            cmd = ["taskset", "-c", cpus, str(Path(sys.executable).parent / "binome"), "serve",
                   "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(design.workers)]
        else:
            # The same uvicorn options as `binome serve` where they apply to any
            # app: uvloop, httptools, no access log, no proxy headers.
            cmd = ["taskset", "-c", cpus, sys.executable, "-m", "uvicorn", design.app,
                   "--factory", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(design.workers), "--loop", "uvloop",
                   "--http", "httptools",
                   "--no-access-log", "--no-proxy-headers", "--log-level", "warning",
                   "--no-server-header", "--timeout-keep-alive", "5",
                   "--timeout-graceful-shutdown", "30"]
        self.command = cmd
        self.process = subprocess.Popen(cmd, env=env, cwd=design.root, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        LIVE.add(self.process)

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.design.name} exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.design.name} not ready after {timeout}s:\n{self.log_tail()}")

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 40) -> int | None:
        """SIGTERM to uvicorn (graceful: the lifespan writes what is queued), then KILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_group(self.process)
                self.process.wait()
        # workers of a multi-worker uvicorn are in the same (our own) process group
        kill_group(self.process)
        LIVE.discard(self.process)
        self._log.close()
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


LIVE: set[subprocess.Popen[bytes]] = set()


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group this script created for `process` (start_new_session)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class RssSampler(threading.Thread):
    """Samples the summed RSS of a server's processes every 100 ms, and their CPU time."""

    def __init__(self, server: Server, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self._server = server
        self._interval = interval
        self._halt = threading.Event()
        self.peak = 0          # the largest sum over the server's processes
        self.peak_single = 0   # the largest single process
        self.processes = 0     # the most processes seen at once
        self.samples = 0
        self.cpu: dict[int, float] = {}   # pid -> user+system seconds, last seen

    def run(self) -> None:
        while not self._halt.is_set():
            total = 0
            tree = self._server.tree()
            self.processes = max(self.processes, len(tree))
            for proc in tree:
                try:
                    rss = proc.memory_info().rss
                    total += rss
                    self.peak_single = max(self.peak_single, rss)
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                except psutil.Error:
                    pass
            if total:
                self.peak = max(self.peak, total)
                self.samples += 1
            self._halt.wait(self._interval)

    def cpu_seconds(self) -> float:
        """CPU time of the server's processes now (processes gone since: last seen)."""
        for proc in self._server.tree():
            try:
                times = proc.cpu_times()
                self.cpu[proc.pid] = times.user + times.system
            except psutil.Error:
                pass
        return sum(self.cpu.values())

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_wrk(args: argparse.Namespace, url: str, beacon_file: Path, tag: str, seconds: int,
            out_path: Path) -> dict[str, Any]:
    cmd = ["taskset", "-c", args.load_cpu, "wrk", "-t", str(args.threads),
           "-c", str(args.connections), "-d", f"{seconds}s", "--latency", "--timeout", "10s",
           "-s", str(LUA_SCRIPT), url, "--", str(beacon_file), tag]
    with out_path.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        LIVE.add(process)
        try:
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        finally:
            LIVE.discard(process)
    text = out_path.read_text(errors="replace")
    line = next((l for l in text.splitlines() if l.startswith("BENCH_JSON ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {process.returncode}):\n{text}")
    result = json.loads(line[len("BENCH_JSON "):])
    errors = result["errors"]
    result["non_2xx"] = errors["status"]
    result["ok_2xx"] = result["requests"] - errors["status"]
    result["socket_errors"] = errors["connect"] + errors["read"] + errors["write"]
    result["timeouts"] = errors["timeout"]
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    # beacons/s: answers that accepted a beacon (a 503 "overloaded" is fast but stores nothing)
    result["ok_rps"] = result["ok_2xx"] / (result["duration_us"] / 1e6)
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    result["command"] = " ".join(cmd)
    return result


# -- one run of one design -----------------------------------------------------

@dataclass
class Bench:
    args: argparse.Namespace
    databases: dict[Path, tuple[str, Db]]   # a checkout's database: URL, connection
    beacon_file: Path
    log_dir: Path
    runs: list[dict[str, Any]] = field(default_factory=list)
    # the database of the design being run (`run` picks it)
    db_url: str = field(init=False)
    db: Db = field(init=False)

    def server_env(self, design: Design, tmp: Path) -> dict[str, str]:
        env = clean_env(design.root, BENCH_DATABASE_URL=self.db_url)
        if design.collector:
            env["BINOME_DATABASE_URL"] = self.db_url
            env["BINOME_RATE_LIMIT_PER_MINUTE"] = str(self.args.rate_limit)
            # Each run its own spool: what one run left on disk must not be
            # replayed into the next one's figures.
            env["BINOME_SPOOL_DIR"] = str(tmp / f"spool-{secrets.token_hex(3)}")
            env.update(design.env)
            env.update(self.args.collector_env)
            if design.workers > 1:
                # as `binome serve --workers N` does: /metrics aggregated over workers
                metrics_dir = tmp / f"metrics-{secrets.token_hex(3)}"
                metrics_dir.mkdir()
                env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        return env

    def reset(self, design: Design) -> None:
        if design.table == "binome.beacons":
            self.db.execute("TRUNCATE binome.beacons, binome.ingest_counts, binome.dead_letters,"
                            " binome.fold_queue")
        elif design.table:
            self.db.execute(f"TRUNCATE {design.table}")

    def count(self, design: Design, tag: str | None = None) -> int:
        assert design.table
        if tag is None:
            return int(self.db.val(f"SELECT count(*) FROM {design.table}"))
        return int(self.db.val(f"SELECT count(*) FROM {design.table} WHERE starts_with(pv, $1)",
                               tag + "_"))

    def postgres_cpu(self) -> dict[int, tuple[str, float]]:
        """CPU seconds so far of each PostgreSQL backend serving the bench database
        (the server is local: its backends compete for the same two cores), with
        its role: the application name (binome-writer, binome-folder ...) or, for
        PostgreSQL's own workers (autovacuum), the backend type."""
        backends = self.db.rows(
            "SELECT pid, coalesce(nullif(application_name, ''), backend_type) AS role"
            " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        seconds = {}
        for backend in backends:
            try:
                times = psutil.Process(backend["pid"]).cpu_times()
                seconds[backend["pid"]] = (backend["role"], times.user + times.system)
            except psutil.Error:
                pass
        return seconds

    def accepted(self) -> int:
        """What the collector itself counted as accepted (binome.ingest_counts)."""
        return int(self.db.val("SELECT coalesce(sum(accepted), 0) FROM binome.ingest_counts"))

    def wait_drained(self, design: Design, server_url: str, quiet: float = 1.5,
                     timeout: float = 120) -> tuple[int, float]:
        """Poll the row count until it (and the collector's counters) stop changing
        and, for the collector, its queue (binome_queue_depth) is empty: one long
        write can leave the count unchanged for longer than `quiet`."""
        started = time.monotonic()
        last: tuple[int, int] | None = None
        last_change = started
        collector = design.table == "binome.beacons"
        while True:
            now = (self.count(design), self.accepted() if collector else 0)
            if now != last:
                last, last_change = now, time.monotonic()
            elif time.monotonic() - last_change >= quiet and (
                    not collector or _queue_empty(server_url)):
                return now[0], last_change - started
            if time.monotonic() - started > timeout:
                return now[0], time.monotonic() - started
            time.sleep(0.2)

    def run(self, design: Design, round_no: int, tmp: Path,
            profile_seconds: int = 0) -> dict[str, Any]:
        args = self.args
        label = f"{design.name}-r{round_no}" if not profile_seconds else f"{design.name}-profile"
        self.db_url, self.db = self.databases[design.root]
        self.reset(design)
        cpus = args.server_cpu if design.workers == 1 else args.all_cpus
        server = Server(design, cpus, self.server_env(design, tmp),
                        self.log_dir / f"{label}.server.log")
        record: dict[str, Any] = {"design": design.name, "round": round_no,
                                  "workers": design.workers, "server_cpus": cpus}
        sampler = RssSampler(server)
        try:
            server.wait_ready("/readyz" if design.collector else "/healthz")
            sampler.start()
            if args.warmup > 0:
                run_wrk(args, server.url, self.beacon_file, "w" + secrets.token_hex(3),
                        args.warmup, self.log_dir / f"{label}.warmup.wrk.txt")
            tag = "m" + secrets.token_hex(3)
            cpu_before = sampler.cpu_seconds()
            pg_before = self.postgres_cpu()
            profiler = None
            if profile_seconds:
                profiler = start_profiler(args, server, self.log_dir, profile_seconds)
            started = time.monotonic()
            wrk = run_wrk(args, server.url, self.beacon_file, tag,
                          profile_seconds or args.duration,
                          self.log_dir / f"{label}.wrk.txt")
            cpu_after = sampler.cpu_seconds()
            wall = time.monotonic() - started
            pg_after = self.postgres_cpu()
            pg_by_role: dict[str, float] = {}
            for pid, (role, seconds) in pg_after.items():
                spent = seconds - pg_before.get(pid, (role, 0.0))[1]
                pg_by_role[role] = pg_by_role.get(role, 0.0) + spent
            pg_seconds = sum(pg_by_role.values())
            if profiler is not None:
                record["profile"] = finish_profiler(profiler)
            record.update(
                rps=wrk["rps"], ok_rps=wrk["ok_rps"], p50_ms=wrk["latency_us"]["p50"] / 1000,
                p99_ms=wrk["latency_us"]["p99"] / 1000,
                max_ms=wrk["latency_us"]["max"] / 1000,
                requests=wrk["requests"], ok_2xx=wrk["ok_2xx"], non_2xx=wrk["non_2xx"],
                sent=wrk["sent"], socket_errors=wrk["socket_errors"],
                timeouts=wrk["timeouts"], wrk=wrk,
                server_cpu_pct=round(100 * (cpu_after - cpu_before) / wall, 1),
                wrk_cpu_pct=round(100 * wrk["cpu_seconds"] / wall, 1),
                postgres_cpu_pct=round(100 * pg_seconds / wall, 1),
                postgres_cpu_pct_by_role={role: round(100 * spent / wall, 1)
                                          for role, spent in sorted(pg_by_role.items())},
                # the cost of one request in server CPU, robust to other load on the machine
                server_cpu_us_per_req=round(1e6 * (cpu_after - cpu_before)
                                            / max(1, wrk["requests"]), 1),
                server_cpu_us_per_beacon=round(1e6 * (cpu_after - cpu_before)
                                               / wrk["ok_2xx"], 1) if wrk["ok_2xx"] else None,
            )
            # what one accepted beacon costs the whole machine: server, wrk, PostgreSQL
            record["machine_cpu_us_per_beacon"] = round(
                (record["server_cpu_pct"] + record["wrk_cpu_pct"] + record["postgres_cpu_pct"])
                * 1e4 / wrk["ok_rps"], 1) if wrk["ok_rps"] else None
            if design.table:
                rows_drained, drain_s = self.wait_drained(design, server.url)
                record["drain_seconds"] = round(drain_s, 2)
                record["rows_total_drained"] = rows_drained
            if design.table == "binome.beacons":
                # The page views the folder has yet to fold behind the writes
                # (0007): how long after the load stopped the views caught up.
                record["fold_queue_at_drain"] = int(self.db.val(
                    "SELECT count(*) FROM binome.fold_queue"))
                caught_up = drain_s  # the last row was written (and folded, if none wait)
                while self.db.val("SELECT count(*) FROM binome.fold_queue") and (
                        time.monotonic() - started - wall < 600):
                    time.sleep(0.1)
                    caught_up = time.monotonic() - started - wall
                record["fold_caught_up_seconds"] = round(caught_up, 2)
                record["collector_accepted"] = self.accepted()
                record["collector_metrics"] = scrape_metrics(server.url)
                # the warm-up's load and the measured one: what /metrics counted over
                record["load_seconds"] = args.warmup + wall
                record["rejected_by_reason"] = {
                    k.split('reason="', 1)[1].rstrip('"}'): int(v)
                    for k, v in record["collector_metrics"].items()
                    if k.startswith("binome_beacons_rejected_total{") and v}
        finally:
            sampler.stop()
            record["server_exit"] = server.stop()
            record["peak_rss_mb"] = round(sampler.peak / 2**20, 1)
            record["peak_rss_single_process_mb"] = round(sampler.peak_single / 2**20, 1)
            record["server_processes"] = sampler.processes
            record["rss_samples"] = sampler.samples
        if design.table:
            self.verify(design, record, tag)
        log_text = server.log_path.read_text(errors="replace")
        record["server_log_errors"] = sum(1 for line in log_text.splitlines()
                                          if "Traceback" in line or "ERROR" in line)
        record["server_log"] = str(server.log_path.relative_to(ROOT))
        return record

    def verify(self, design: Design, record: dict[str, Any], tag: str) -> None:
        """Every 2xx wrk saw must be a row; rows beyond it can only be requests in flight."""
        rows = self.count(design, tag)
        total_after_stop = self.count(design)
        in_flight_max = record["sent"] - record["requests"]
        record["rows_run"] = rows
        record["rows_total_after_stop"] = total_after_stop
        record["missing"] = max(0, record["ok_2xx"] - rows)
        record["extra_in_flight"] = rows - record["ok_2xx"]
        problems = []
        if rows < record["ok_2xx"]:
            problems.append(f"{record['ok_2xx'] - rows} answered 2xx but not stored")
        if rows - record["ok_2xx"] > in_flight_max:
            problems.append(f"{rows - record['ok_2xx']} more rows than 2xx + in-flight")
        if total_after_stop != record["rows_total_drained"]:
            problems.append(f"{total_after_stop - record['rows_total_drained']} rows written "
                            "only at shutdown (queue not drained by the time it went quiet)")
        if design.table == "binome.beacons":
            dead = int(self.db.val("SELECT count(*) FROM binome.dead_letters"))
            record["dead_letters"] = dead
            accepted = int(self.db.val("SELECT coalesce(sum(accepted), 0)"
                                       " FROM binome.ingest_counts"))
            record["collector_accepted_after_stop"] = accepted
            if accepted != total_after_stop:
                problems.append(f"collector counted {accepted} accepted, "
                                f"{total_after_stop} rows stored")
            if dead:
                problems.append(f"{dead} rows in binome.dead_letters")
            # Every stored page view folded (what the analyst views read).
            pvs = int(self.db.val("SELECT count(DISTINCT pv) FROM binome.beacons"
                                  " WHERE starts_with(pv, $1)", tag + "_"))
            page_views = int(self.db.val("SELECT count(*) FROM binome.page_views"
                                         " WHERE starts_with(pv, $1)", tag + "_"))
            record["page_views_unfolded"] = pvs - page_views
            if pvs != page_views:
                problems.append(f"{pvs - page_views} stored page views not folded")
        record["verified"] = not problems
        record["problems"] = problems


def _queue_empty(url: str) -> bool:
    """The collector's workers hold no beacon in memory (a scrape may reach either
    worker; with multiprocess metrics both report the sum)."""
    try:
        metrics = scrape_metrics(url)
    except OSError:
        return False
    return metrics.get("binome_queue_depth", 1.0) == 0.0 and not metrics.get("binome_spooling")


def scrape_metrics(url: str) -> dict[str, float]:
    """The collector's /metrics (all workers' when PROMETHEUS_MULTIPROC_DIR is set)."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return {"error": str(exc)}  # type: ignore[dict-item]
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                samples[name] = float(value)
            except ValueError:
                pass
    return samples


# -- profile ---------------------------------------------------------------------

def py_spy_path() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def start_profiler(args: argparse.Namespace, server: Server, log_dir: Path,
                   seconds: int) -> dict[str, Any]:
    py_spy = py_spy_path()
    pids = [p.pid for p in server.tree()]
    out = log_dir / "profile.collapsed.txt"
    cmd = ["taskset", "-c", args.load_cpu, py_spy, "record", "--pid", str(pids[-1]),
           "--duration", str(seconds), "--rate", "250", "--nonblocking", "--format", "raw",
           "--output", str(out)]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    LIVE.add(process)
    return {"process": process, "out": out, "command": " ".join(cmd)}


def finish_profiler(profiler: dict[str, Any]) -> dict[str, Any]:
    process: subprocess.Popen[bytes] = profiler["process"]
    output, _ = process.communicate(timeout=60)
    LIVE.discard(process)
    out: Path = profiler["out"]
    if process.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed: {output.decode(errors='replace')}")
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own_lines: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [short_frame(f) for f in stack.split(";")]
        frames = [f for f in frames if f]
        if not frames:
            continue
        own_lines[frames[-1]] += n
        functions = [f.rpartition(":")[0] + ")" for f in frames]  # drop the line number
        own[functions[-1]] += n
        for function in set(functions):
            if not function.startswith(_PLUMBING):
                inclusive[function] += n

    def top(counter: Counter[str], k: int) -> list[dict[str, Any]]:
        return [{"frame": f, "samples": n, "pct": round(100 * n / total, 1)}
                for f, n in counter.most_common(k)]

    return {"command": profiler["command"], "samples": total,
            "collapsed": str(out.relative_to(ROOT)),
            "top_self": top(own, 20), "top_self_lines": top(own_lines, 20),
            "top_inclusive": top(inclusive, 40)}


# Frames every sample of a uvicorn process sits under: left out of the inclusive list.
_PLUMBING = ("_run_module_as_main (", "_run_code (", "<module> (uvicorn/", "main (uvicorn/",
             "run (uvicorn/", "Command.", "Context.invoke (", "Server.run (uvicorn/",
             "Server.serve (uvicorn/", "asyncio_run (uvicorn/", "Runner.run (asyncio/",
             "Server._serve (uvicorn/")


def short_frame(frame: str) -> str:
    """`func (path/to/module.py:123)` -> `func (module.py:123)`; drop the thread label."""
    if frame.startswith(("process ", "thread ")):
        return ""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, line = where.rpartition(":")
    marker = "site-packages/"
    if marker in path:
        path = path.split(marker, 1)[1]
    elif str(ROOT) in path:
        path = path.split(str(ROOT) + "/", 1)[1]
    return f"{name} ({path}:{line})" if path else name


# -- report ------------------------------------------------------------------------

def summarize(runs: list[dict[str, Any]], designs: list[Design]) -> dict[str, Any]:
    bare_by_round = {r["round"]: r["ok_rps"] for r in runs if r["design"] == "bare"}
    summary: dict[str, Any] = {}
    for design in designs:
        mine = [r for r in runs if r["design"] == design.name]
        if not mine:
            continue
        ratios = [r["ok_rps"] / bare_by_round[r["round"]] for r in mine
                  if r["round"] in bare_by_round]
        entry: dict[str, Any] = {
            "about": design.about,
            "workers": design.workers,
            "rounds": len(mine),
            "ok_rps_median": statistics.median(r["ok_rps"] for r in mine),
            "ok_rps_all": [round(r["ok_rps"]) for r in mine],
            "rps_median": statistics.median(r["rps"] for r in mine),
            "rps_all": [round(r["rps"]) for r in mine],
            "ratio_to_bare_median": statistics.median(ratios) if ratios else None,
            "ratio_to_bare_all": [round(x, 3) for x in ratios],
            "p50_ms_median": statistics.median(r["p50_ms"] for r in mine),
            "p99_ms_median": statistics.median(r["p99_ms"] for r in mine),
            "p99_ms_max": max(r["p99_ms"] for r in mine),
            "non_2xx_total": sum(r["non_2xx"] for r in mine),
            "rejected_by_reason": dict(sum((Counter(r.get("rejected_by_reason", {}))
                                            for r in mine), Counter())),
            "socket_errors_total": sum(r["socket_errors"] + r["timeouts"] for r in mine),
            "peak_rss_mb_max": max(r["peak_rss_mb"] for r in mine),
            "peak_rss_single_process_mb_max": max(r["peak_rss_single_process_mb"] for r in mine),
            "server_processes": max(r["server_processes"] for r in mine),
            "server_cpu_pct_median": statistics.median(r["server_cpu_pct"] for r in mine),
            "wrk_cpu_pct_median": statistics.median(r["wrk_cpu_pct"] for r in mine),
            "postgres_cpu_pct_median": statistics.median(r["postgres_cpu_pct"] for r in mine),
            "server_cpu_us_per_req_median": statistics.median(
                r["server_cpu_us_per_req"] for r in mine),
            "server_cpu_us_per_beacon_median": _median_of_known(
                r["server_cpu_us_per_beacon"] for r in mine),
            "machine_cpu_us_per_beacon_median": _median_of_known(
                r["machine_cpu_us_per_beacon"] for r in mine),
        }
        if design.table:
            entry.update(
                ok_2xx_total=sum(r["ok_2xx"] for r in mine),
                rows_total=sum(r.get("rows_run", 0) for r in mine),
                missing_total=sum(r.get("missing", 0) for r in mine),
                verified_all=all(r.get("verified") for r in mine),
                problems=[p for r in mine for p in r.get("problems", [])],
            )
        if any("fold_caught_up_seconds" in r for r in mine):
            entry["fold_caught_up_seconds_max"] = max(r["fold_caught_up_seconds"] for r in mine)
            entry["fold_queue_at_drain_max"] = max(r["fold_queue_at_drain"] for r in mine)
        durable = design.name == "collector-durable"
        if durable:
            fsyncs = sum(r["collector_metrics"].get("binome_durable_fsync_seconds_count", 0)
                         for r in mine)
            entry.update(
                durable_fsyncs_per_second_median=statistics.median(
                    r["collector_metrics"].get("binome_durable_fsync_seconds_count", 0)
                    / r["load_seconds"] for r in mine),
                durable_fsync_ms_mean=1000 * sum(
                    r["collector_metrics"].get("binome_durable_fsync_seconds_sum", 0)
                    for r in mine) / fsyncs if fsyncs else None,
                durable_group_beacons_mean=sum(
                    r["collector_metrics"].get("binome_durable_group_beacons_sum", 0)
                    for r in mine) / fsyncs if fsyncs else None,
            )
        if design.name.endswith("-w2") or durable:
            base = "collector" if durable else design.name[:-3]
            by_round = {r["round"]: r["ok_rps"] for r in runs if r["design"] == base}
            speedups = [r["ok_rps"] / by_round[r["round"]] for r in mine
                        if r["round"] in by_round]
            if speedups:
                entry[f"ratio_to_{base}_median"] = statistics.median(speedups)
        summary[design.name] = entry
    bare = summary.get("bare")
    for entry in summary.values():
        # bare's CPU per request / this design's: the throughput ratio one core would
        # give if nothing else ran on it
        entry["cpu_ratio_to_bare"] = (bare["server_cpu_us_per_req_median"]
                                      / entry["server_cpu_us_per_req_median"]
                                      if bare and entry["server_cpu_us_per_req_median"] else None)
    return summary


def _median_of_known(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def compare_to_baseline(runs: list[dict[str, Any]], summary: dict[str, Any],
                        baseline: Design) -> dict[str, Any] | None:
    """The collector's server CPU per accepted beacon against the baseline's
    (issue 19): the ratio of the medians, and round by round."""
    new, old = summary.get("collector"), summary.get(baseline.name)
    if not (new and old and new["server_cpu_us_per_beacon_median"]
            and old["server_cpu_us_per_beacon_median"]):
        return None
    by_round = {r["round"]: r["server_cpu_us_per_beacon"] for r in runs
                if r["design"] == baseline.name and r["server_cpu_us_per_beacon"]}
    return {
        "design": "collector", "baseline": baseline.name, "baseline_checkout": str(baseline.root),
        "collector_us_per_beacon": new["server_cpu_us_per_beacon_median"],
        "baseline_us_per_beacon": old["server_cpu_us_per_beacon_median"],
        "ratio": new["server_cpu_us_per_beacon_median"] / old["server_cpu_us_per_beacon_median"],
        "ratio_by_round": [round(r["server_cpu_us_per_beacon"] / by_round[r["round"]], 3)
                           for r in runs if r["design"] == "collector"
                           and r["server_cpu_us_per_beacon"] and r["round"] in by_round],
    }


def print_comparison(comparison: dict[str, Any]) -> None:
    print(f"\nserver CPU per accepted beacon (medians): collector "
          f"{comparison['collector_us_per_beacon']:.1f} µs, {comparison['baseline']} "
          f"{comparison['baseline_us_per_beacon']:.1f} µs, ratio {comparison['ratio']:.3f} "
          f"(collector / {comparison['baseline']}; by round: "
          f"{', '.join(map(str, comparison['ratio_by_round'])) or '-'})")


LEGEND = """\
2xx/s = accepted beacons a second (req/s counts refusals too);
ratio = median over rounds of (design 2xx/s / bare 2xx/s of the same round);
p50/p99 = medians over rounds;
CPU% = CPU time / wall time of the server's processes, of wrk, of the PostgreSQL backends
  of the bench database (100 = one core);
µs/req = server CPU time per request; cpu-r = bare's µs/req / this design's (the ratio on an
  otherwise idle core, for CPU-bound designs); µs/2xx = server CPU time per accepted beacon;
2xx / rows = sums over rounds of wrk's 2xx answers and of the rows stored with that run's
  pv prefix; lost = 2xx not stored.
fold_caught_up_seconds_max = after the load stopped, how long until the folder had folded
  every stored page view into what the views read (the worst round)."""


def print_table(summary: dict[str, Any]) -> None:
    header = (f"{'design':<17} {'2xx/s':>7} {'req/s':>7} {'ratio':>6} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'non2xx':>6} {'sockerr':>7} {'2xx':>9} {'rows':>9} {'lost':>5} "
              f"{'RSS MB':>7} {'srvCPU%':>7} {'wrkCPU%':>7} {'pgCPU%':>6} {'µs/req':>6} "
              f"{'cpu-r':>5} {'µs/2xx':>6}")
    print(header)
    print("-" * len(header))
    for name, s in summary.items():
        ratio = s["ratio_to_bare_median"]
        per_beacon = s["server_cpu_us_per_beacon_median"]
        print(f"{name:<17} {s['ok_rps_median']:>7.0f} {s['rps_median']:>7.0f} "
              f"{(f'{ratio:.3f}' if ratio is not None else '-'):>6} "
              f"{s['p50_ms_median']:>7.2f} {s['p99_ms_median']:>7.2f} "
              f"{s['non_2xx_total']:>6} {s['socket_errors_total']:>7} "
              f"{s.get('ok_2xx_total', '-'):>9} {s.get('rows_total', '-'):>9} "
              f"{s.get('missing_total', '-'):>5} {s['peak_rss_mb_max']:>7.1f} "
              f"{s['server_cpu_pct_median']:>7.0f} {s['wrk_cpu_pct_median']:>7.0f} "
              f"{s['postgres_cpu_pct_median']:>6.0f} {s['server_cpu_us_per_req_median']:>6.0f} "
              f"{(format(s['cpu_ratio_to_bare'], '.3f') if s['cpu_ratio_to_bare'] else '-'):>5} "
              f"{(format(per_beacon, '.0f') if per_beacon else '-'):>6}")
    print(LEGEND)
    for name, s in summary.items():
        for key, value in s.items():
            if (key.startswith("ratio_to_") and key.endswith("_median")
                    and key != "ratio_to_bare_median"):
                base = key[len("ratio_to_"):-len("_median")]
                print(f"{name} / {base}: {value:.3f} (median over rounds)")
        for problem in s.get("problems", []):
            print(f"PROBLEM {name}: {problem}")
        if s["server_processes"] > 1:
            print(f"{name} RSS: sum over {s['server_processes']} processes (uvicorn's supervisor, "
                  f"multiprocessing's resource tracker, the workers); largest single process "
                  f"{s['peak_rss_single_process_mb_max']} MB")
        if "fold_caught_up_seconds_max" in s:
            print(f"{name} fold: {s['fold_queue_at_drain_max']:,} page views still to fold when"
                  f" the writes were done, folded {s['fold_caught_up_seconds_max']:.1f} s after"
                  " the load stopped (worst round)")
        if s.get("durable_group_beacons_mean") is not None:
            print(f"{name} log: {s['durable_fsyncs_per_second_median']:.0f} fsyncs/s (median),"
                  f" {s['durable_fsync_ms_mean']:.2f} ms an fsync and"
                  f" {s['durable_group_beacons_mean']:.1f} beacons a group (means, all rounds)")
        if s.get("rejected_by_reason"):
            print(f"{name} refused (its /metrics, all rounds): "
                  + ", ".join(f"{k} {v}" for k, v in s["rejected_by_reason"].items()))


def cpu_budget(summary: dict[str, Any], cores: int) -> dict[str, Any] | None:
    """What issue 7's two rate targets together leave a beacon of CPU on this machine.

    One worker at 0.5 x bare's rate B and two workers at 1.4 x that make 0.7 B
    beacons a second, which the machine's cores must serve whole: the server,
    wrk and PostgreSQL together get at most cores / (0.7 B) of CPU a beacon.
    """
    bare = summary.get("bare")
    if not bare or not bare["ok_rps_median"]:
        return None
    rate = 0.7 * bare["ok_rps_median"]
    return {"cores": cores, "two_worker_rate": round(rate),
            "budget_us_per_beacon": round(cores / rate * 1e6, 1),
            "measured_us_per_beacon": {
                name: round(entry["machine_cpu_us_per_beacon_median"], 1)
                for name, entry in summary.items()
                if entry.get("machine_cpu_us_per_beacon_median")}}


def print_budget(budget: dict[str, Any]) -> None:
    print(f"\nCPU budget of the two rate targets together: two workers at 1.4 x one worker at "
          f"0.5 x bare = {budget['two_worker_rate']:,} beacons/s on {budget['cores']} cores, "
          f"so at most {budget['budget_us_per_beacon']} µs of CPU an accepted beacon for the "
          "server, wrk and PostgreSQL together.")
    print("measured, µs of CPU an accepted beacon (server + wrk + PostgreSQL, medians): "
          + ", ".join(f"{name} {value}" for name, value
                      in budget["measured_us_per_beacon"].items()))


def check_targets(summary: dict[str, Any],
                  comparison: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Issue 7's acceptance figures, and issue 19's against a baseline, as far as
    this run measured them."""
    checks = []
    if comparison:
        checks.append({"target": f"collector's server CPU per accepted beacon at most 10 % "
                                 f"above {comparison['baseline']}'s",
                       "value": round(comparison["ratio"], 3), "ok": comparison["ratio"] <= 1.1})
    c = summary.get("collector")
    if c:
        if c["ratio_to_bare_median"] is not None:
            checks.append({"target": "collector/bare >= 0.5",
                           "value": round(c["ratio_to_bare_median"], 3),
                           "ok": c["ratio_to_bare_median"] >= 0.5})
        checks.append({"target": "collector p99 <= 25 ms (median over rounds)",
                       "value": c["p99_ms_median"], "ok": c["p99_ms_median"] <= 25})
        checks.append({"target": "no accepted beacon missing", "value": c["missing_total"],
                       "ok": c["missing_total"] == 0 and c["verified_all"]})
        checks.append({"target": "collector peak RSS < 200 MB", "value": c["peak_rss_mb_max"],
                       "ok": c["peak_rss_mb_max"] < 200})
    d = summary.get("collector-durable")
    if d and "ratio_to_collector_median" in d:
        # Issue 23: durable acceptance becomes the default if it costs under 20 %
        # of the beacons per second and keeps p99 under 25 ms.
        checks.append({"target": "collector-durable >= 0.8 x collector (issue 23: default)",
                       "value": round(d["ratio_to_collector_median"], 3),
                       "ok": d["ratio_to_collector_median"] >= 0.8})
        checks.append({"target": "collector-durable p99 < 25 ms (median over rounds)",
                       "value": d["p99_ms_median"], "ok": d["p99_ms_median"] < 25})
        checks.append({"target": "collector-durable: no accepted beacon missing",
                       "value": d["missing_total"],
                       "ok": d["missing_total"] == 0 and d["verified_all"]})
    w2 = summary.get("collector-w2")
    if w2 and "ratio_to_collector_median" in w2:
        checks.append({"target": "collector --workers 2 >= 1.4 x one worker",
                       "value": round(w2["ratio_to_collector_median"], 3),
                       "ok": w2["ratio_to_collector_median"] >= 1.4})
    if w2:
        checks.append({"target": f"collector-w2 peak RSS < 200 MB (sum of its "
                                 f"{w2['server_processes']} processes)",
                       "value": w2["peak_rss_mb_max"], "ok": w2["peak_rss_mb_max"] < 200})
        checks.append({"target": "collector-w2: no accepted beacon missing",
                       "value": w2["missing_total"],
                       "ok": w2["missing_total"] == 0 and w2["verified_all"]})
    return checks


def print_profile(profile: dict[str, Any]) -> None:
    print(f"\npy-spy: {profile['samples']} samples of one collector worker under load "
          f"({profile['collapsed']})")
    print("top 10 functions by own time (where the CPU is spent; native code called from a "
          "function counts as its own):")
    for row in profile["top_self"][:10]:
        print(f"  {row['pct']:5.1f}%  {row['frame']}")
    print("top 15 functions by inclusive time (uvicorn's and asyncio's outer frames left out):")
    for row in profile["top_inclusive"][:15]:
        print(f"  {row['pct']:5.1f}%  {row['frame']}")


# -- main ------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                  timeout=10, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    versions = {}
    for package in ("uvicorn", "uvloop", "httptools", "starlette", "pydantic", "pydantic_core",
                    "asyncpg", "orjson"):
        try:
            from importlib.metadata import version
            versions[package] = version(package)
        except Exception:  # noqa: BLE001 - informational only
            versions[package] = None
    return {
        "cpu": model, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
        "python": platform.python_version(), "versions": versions,
        "wrk": out(["wrk", "--version"]).splitlines()[0] if shutil.which("wrk") else None,
        "git_commit": out(["git", "rev-parse", "HEAD"]),
        "git_dirty_collector": bool(out(["git", "status", "--porcelain", "--", "collector",
                                         "sql"])),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark POST /beacon: bare Starlette vs the collector vs references.")
    parser.add_argument("--duration", type=int, default=8, help="seconds of load per run (8)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; each runs every design once, order rotating (3)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="seconds of load before each measured run, not counted (1)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round of 2 s per design, 1 s warm-up")
    parser.add_argument("--designs", default=",".join(DEFAULT_DESIGNS),
                        help=f"comma-separated subset of {','.join(DESIGNS)} "
                             f"(default {','.join(DEFAULT_DESIGNS)}); 'all' for every one")
    parser.add_argument("--server-url", default=os.environ.get(
        "BINOME_BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server to create the bench database on (env BINOME_BENCH_SERVER_URL; "
             "default postgresql://postgres@127.0.0.1:5432/postgres)")
    parser.add_argument("--server-cpu", default="0", help="CPU list for one-worker servers (0)")
    parser.add_argument("--load-cpu", default="1", help="CPU list for wrk (1)")
    parser.add_argument("--postgres-cpu", default="",
                        help="CPU list to pin the local PostgreSQL server to during the run "
                             "(its postmaster and every backend; restored at the end), e.g. "
                             "the load CPU, as if PostgreSQL ran beside the collector rather "
                             "than on its core; default: not pinned")
    parser.add_argument("--rate-limit", type=int, default=BENCH_RATE_LIMIT,
                        help="BINOME_RATE_LIMIT_PER_MINUTE for the collector (on, never reached)")
    parser.add_argument("--collector-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the collector designs, e.g. "
                             "BINOME_BATCH_MAX_ROWS=2000 (repeatable)")
    parser.add_argument("--beacons", type=int, default=4000,
                        help="distinct beacon templates wrk cycles through (4000)")
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS",
                        help="also profile one collector worker with py-spy for SECONDS "
                             "under the same load, after the rounds")
    parser.add_argument("--baseline", metavar="REV",
                        help="also run the collector of git revision REV (binome serve from "
                             "a temporary worktree of it, with its own database) as design "
                             "collector@<short REV>, and compare the server CPU per accepted "
                             "beacon")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    args.baseline_commit = None
    if args.baseline:
        found = subprocess.run(["git", "rev-parse", "--verify", "--quiet",
                                f"{args.baseline}^{{commit}}"], cwd=ROOT, capture_output=True,
                               text=True, check=False)
        if found.returncode != 0:
            parser.error(f"--baseline {args.baseline}: not a commit of {ROOT}")
        args.baseline_commit = found.stdout.strip()
    if args.quick:
        args.duration, args.rounds, args.warmup = 2, 1, 1
    names = list(DESIGNS) if args.designs == "all" else [
        d.strip() for d in args.designs.split(",") if d.strip()]
    unknown = [n for n in names if n not in DESIGNS]
    if unknown:
        parser.error(f"unknown design(s) {', '.join(unknown)}; choose from {', '.join(DESIGNS)}")
    args.design_list = [DESIGNS[n] for n in names]
    try:
        args.collector_env = dict(item.split("=", 1) for item in args.collector_env)
    except ValueError:
        parser.error("--collector-env takes NAME=VALUE")
    args.all_cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    return args


class PostgresPinning:
    """Pins the local PostgreSQL server (postmaster and backends; backends started
    later inherit it) to some CPUs, and gives it back the postmaster's CPUs after."""

    def __init__(self, server_url: str, cpus: str) -> None:
        admin = Db(server_url)
        try:
            data_dir = Path(admin.val("SHOW data_directory"))
        finally:
            admin.close()
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        self.postmaster = psutil.Process(pid)
        self.cpus = [int(c) for c in cpus.split(",")]
        self.before = self.postmaster.cpu_affinity()

    def _set(self, cpus: list[int]) -> None:
        for process in [self.postmaster, *self.postmaster.children(recursive=True)]:
            try:
                process.cpu_affinity(cpus)
            except psutil.Error:
                pass

    def __enter__(self) -> PostgresPinning:
        self._set(self.cpus)
        return self

    def __exit__(self, *exc: object) -> None:
        self._set(self.before)


def add_worktree(commit: str, path: Path) -> None:
    """A detached git worktree of `commit` at `path`: that revision's code, sql/ and snippet."""
    done = subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git worktree add {path} {commit} failed:\n{done.stderr}")


def remove_worktree(path: Path) -> None:
    done = subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 and path.exists():
        print(f"warning: git worktree remove {path}: {done.stderr.strip()}", file=sys.stderr)


def prepare_database(root: Path, url: str, tmp: Path) -> str:
    """Migrates the database at `url` with checkout `root`'s own `binome migrate`
    and registers site `demo`; returns the collector package that checkout's
    environment imports, checked to be its own."""
    env = clean_env(root, BINOME_DATABASE_URL=url)
    # From a directory without a collector package, as the `binome` script runs:
    # its sys.path[0] is the venv's bin directory, not its working directory.
    where = subprocess.run([sys.executable, "-c", "import collector; print(collector.__file__)"],
                           env=env, cwd=tmp, capture_output=True, text=True, check=False)
    imported = Path(where.stdout.strip()).parent
    if where.returncode != 0 or not imported.is_relative_to(root):
        raise RuntimeError(f"the environment for {root} imports the collector from "
                           f"{imported}:\n{where.stderr}")
    binome = str(Path(sys.executable).parent / "binome")
    for cmd in ([binome, "migrate"], [binome, "site", "add", "demo"]):
        done = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    return str(imported)


def preflight(args: argparse.Namespace) -> None:
    """What the run needs, checked before it starts rather than after its rounds."""
    if not shutil.which("wrk"):
        sys.exit("bench/ingest.py needs wrk, the HTTP load generator. On Debian/Ubuntu: "
                 "sudo apt-get update && sudo apt-get install -y wrk")
    if not shutil.which("taskset"):
        sys.exit("bench/ingest.py needs taskset (util-linux): sudo apt-get install -y util-linux")
    if len(os.sched_getaffinity(0)) < 2:
        print("warning: fewer than 2 CPUs: the server and wrk will share one core",
              file=sys.stderr)
    if args.profile and not Path(py_spy_path()).exists():
        sys.exit("--profile needs py-spy: .venv/bin/pip install py-spy")


def _by_role(percents: dict[str, float]) -> str:
    """'(binome-writer 20.1, binome-folder 30.2)' for the roles that used any CPU."""
    spent = [f"{role} {pct}" for role, pct in percents.items() if pct >= 0.1]
    return f"({', '.join(spent)})" if spent else ""


def run_rounds(bench: Bench, args: argparse.Namespace, tmp: Path,
               runs: list[dict[str, Any]]) -> None:
    """Every design once a round, the order rotating from round to round."""
    designs = args.design_list
    for round_no in range(1, args.rounds + 1):
        shift = (round_no - 1) % len(designs)
        order = designs[shift:] + designs[:shift]
        for design in order:
            record = bench.run(design, round_no, tmp)
            runs.append(record)
            verdict = ("ok" if record.get("verified")
                       else "PROBLEM: " + "; ".join(record.get("problems", [])))
            rows = (f", rows {record['rows_run']} for {record['ok_2xx']} 2xx ({verdict})"
                    if design.table else "")
            print(f"  round {round_no} {design.name:<17} {record['ok_rps']:6.0f} 2xx/s "
                  f"{record['rps']:6.0f} req/s  "
                  f"p50 {record['p50_ms']:6.2f} ms  p99 {record['p99_ms']:6.2f} ms  "
                  f"non-2xx {record['non_2xx']}  RSS {record['peak_rss_mb']} MB  "
                  f"CPU% server {record['server_cpu_pct']} wrk "
                  f"{record['wrk_cpu_pct']} pg {record['postgres_cpu_pct']}"
                  f" {_by_role(record['postgres_cpu_pct_by_role'])}{rows}"
                  + (f" refused: {record['rejected_by_reason']}"
                     if record.get("rejected_by_reason") else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preflight(args)

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGINT too: a shell without job control starts background jobs with it ignored
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    RESULTS_DIR.mkdir(exist_ok=True)
    log_dir = RESULTS_DIR / f"{stamp}-logs"
    log_dir.mkdir()
    tmp = Path(tempfile.mkdtemp(prefix="binome-bench-"))
    beacon_file = tmp / "beacons.tsv"
    beacons = write_beacon_file(beacon_file, args.beacons, args.seed)
    baseline = None
    if args.baseline:
        short = args.baseline_commit[:7]
        baseline = Design(f"collector@{short}", "collector.app:create_app", 1, "binome.beacons",
                          f"the collector of --baseline {args.baseline} as deployed (binome "
                          f"serve), from a worktree of {short}, with its own database",
                          root=tmp / f"baseline-{short}")
        args.design_list.append(baseline)
    info = machine_info()
    # This script's own work (sampling, polling) stays off the server's core.
    os.sched_setaffinity(0, {int(c) for c in args.load_cpu.split(",")})

    print(f"binome ingest bench: {', '.join(d.name for d in args.design_list)}; "
          f"{args.rounds} round(s) x {args.duration} s (+{args.warmup} s warm-up), "
          f"{args.connections} connections; server on CPU {args.server_cpu}, "
          f"wrk on CPU {args.load_cpu}, PostgreSQL "
          + (f"on CPU {args.postgres_cpu}" if args.postgres_cpu else "not pinned"))
    print(f"beacons: {beacons['templates']} templates, {beacons['body_bytes_mean']} bytes "
          f"on average; logs in {log_dir.relative_to(ROOT)}")
    created: list[str] = []
    databases: dict[Path, tuple[str, Db]] = {}
    runs: list[dict[str, Any]] = []
    profile = None
    interrupted = False
    try:
        if baseline:
            add_worktree(args.baseline_commit, baseline.root)
        # one database per checkout: the two revisions' schemas may differ
        for root in dict.fromkeys([ROOT, *(d.root for d in args.design_list)]):
            name = "binome_bench_" + secrets.token_hex(4)
            admin = Db(args.server_url)
            try:
                admin.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
            finally:
                admin.close()
            url = with_database(args.server_url, name)
            imported = prepare_database(root, url, tmp)
            info.setdefault("collector_imported_from", {})[str(root)] = imported
            print(f"database {name}: migrated by the collector of {imported}")
            databases[root] = (url, Db(url))
        from reference_apps import REF_DDL  # bench/ is sys.path[0]
        databases[ROOT][1].execute(REF_DDL)
        bench = Bench(args, databases, beacon_file, log_dir)

        pinning = (PostgresPinning(args.server_url, args.postgres_cpu) if args.postgres_cpu
                   else contextlib.nullcontext())
        with pinning:
            run_rounds(bench, args, tmp, runs)
            if args.profile:
                record = bench.run(DESIGNS["collector"], 0, tmp, profile_seconds=args.profile)
                profile = record.pop("profile")
                profile["run"] = record
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping servers, dropping the bench databases", file=sys.stderr)
    finally:
        for process in list(LIVE):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    pass
            kill_group(process)
        for _, db in databases.values():
            db.close()
        if created:
            admin = Db(args.server_url)
            try:
                for name in created:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                admin.close()
        if baseline:
            remove_worktree(baseline.root)
        shutil.rmtree(tmp, ignore_errors=True)

    summary = summarize(runs, args.design_list)
    if not runs:
        return 130 if interrupted else 1
    print()
    print_table(summary)
    comparison = compare_to_baseline(runs, summary, baseline) if baseline else None
    if comparison:
        print_comparison(comparison)
    checks = check_targets(summary, comparison)
    if checks:
        print("\ntargets (issue 7; issue 19 with --baseline):")
        for check in checks:
            print(f"  {'PASS' if check['ok'] else 'FAIL'}  {check['target']}: {check['value']}")
    budget = cpu_budget(summary, os.cpu_count() or 1)
    if budget:
        print_budget(budget)
    if profile:
        print_profile(profile)
    info["loadavg_end"] = os.getloadavg()
    out = RESULTS_DIR / f"{stamp}.json"
    out.write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": stamp, "interrupted": interrupted,
        "settings": {k: v for k, v in vars(args).items() if k != "design_list"},
        "designs": {d.name: {"app": d.app, "workers": d.workers, "table": d.table,
                             "about": d.about, "checkout": str(d.root)}
                    for d in args.design_list},
        "beacons": beacons, "machine": info, "summary": summary,
        "baseline_comparison": comparison, "targets": checks,
        "cpu_budget": budget,
        "profile": profile, "runs": runs,
    }, indent=2, default=str))
    print(f"\nresults: {out.relative_to(ROOT)}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
