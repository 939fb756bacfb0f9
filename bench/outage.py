#!/usr/bin/env python3
"""Outage benchmark: beacons keep arriving while PostgreSQL is down; how many are
accepted, are they all stored afterwards, and how fast does the spool replay?

    .venv/bin/python bench/outage.py                      # 20 s outage, 1 worker
    .venv/bin/python bench/outage.py --outage 60 --workers 2 --concurrency 32
    .venv/bin/python bench/outage.py --load wrk           # wrk as the load (faster)

One run: a private PostgreSQL cluster (collector/embedded.py, under a temporary
directory, removed at the end), `binome serve` against it with its own spool
directory, and a load of distinct beacons from --concurrency HTTP senders for the
whole run: --before seconds with PostgreSQL up, --outage seconds after `pg_ctl
stop`, then `pg_ctl start` and the load goes on until the spool has drained
(python load) or for --after seconds (wrk, which needs its duration up front).
The python load keeps the pv of every 204 and checks each was stored; with wrk
(faster, so the collector rather than the load sets the pace) the check is on
counts: the collector's own binome_beacons_accepted_total against the rows.

Figures (printed, and written to bench/results/outage-<time>.json):
  accepted_during_outage   beacons answered 204 while PostgreSQL was stopped
                           (binome_beacons_accepted_total between stop and start)
  spool_at_restart         what waited on disk when PostgreSQL came back
  drain_seconds            from `pg_ctl start` until the spool was empty
  replayed                 beacons written back from the spool (live traffic that
                           arrived during the replay went through the spool too)
  replay_rate              replayed / drain_seconds, beacons per second, while
                           the live load goes on
  stored / accepted        rows in binome.beacons vs beacons the collector answered
                           204, over the run; duplicates counted separately (must be 0)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from collector import db  # noqa: E402
from collector.embedded import EmbeddedPostgres  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def beacon_body(pv: str) -> bytes:
    now = time.time() * 1000
    return json.dumps({
        "v": 1, "consent": "marketing", "site": "demo", "pv": pv, "seq": 0, "t0": now - 3000,
        "sid": "s" + pv[-12:], "release": "2026.11.3",
        "url": "https://shop.example/p/42?utm_source=newsletter&utm_medium=email"
               "&utm_campaign=black-friday",
        "ref": "https://www.google.com/", "dims": {"page_type": "product", "ab_variant": "B"},
        "device": {"vw": 390, "vh": 844, "dpr": 3, "mem": 4, "cpus": 8, "ect": "4g"},
        "nav": {"type": "navigate", "ttfb": 210, "dcl": 950, "load": 1400},
        "metrics": [{"name": "LCP", "value": 2140.5, "id": "v5-1-1", "delta": 2140.5},
                    {"name": "CLS", "value": 0.04, "id": "v5-1-2", "delta": 0.04}],
    }).encode()


class Load:
    """--concurrency senders posting distinct beacons until stopped."""

    def __init__(self, url: str, concurrency: int) -> None:
        self.url = url + "/beacon"
        self.concurrency = concurrency
        self.accepted: list[tuple[float, str]] = []
        self.statuses: Counter[int | str] = Counter()
        self.running = True
        self._n = 0

    async def sender(self, client: httpx.AsyncClient, worker: int) -> None:
        while self.running:
            self._n += 1
            pv = f"bench{worker:03d}x{self._n:09d}"
            try:
                response = await client.post(self.url, content=beacon_body(pv),
                                             headers={"Content-Type": "text/plain"})
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
                continue
            self.statuses[response.status_code] += 1
            if response.status_code == 204:
                self.accepted.append((time.monotonic(), pv))
            elif response.status_code == 503:
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")) / 10)

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            await asyncio.gather(*(self.sender(client, i) for i in range(self.concurrency)))


async def metrics(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    text = (await client.get(url + "/metrics")).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            values[name] = float(value)
    return values


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage", type=float, default=20.0, help="seconds PostgreSQL is down")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before it")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--load", choices=("python", "wrk"), default="python")
    parser.add_argument("--after", type=float, default=15.0,
                        help="wrk only: seconds of load after PostgreSQL restarts")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="binome-outage-"))
    cluster = EmbeddedPostgres(work / "pg")
    url = cluster.start()
    process = None
    try:
        conn = await db.connect(url)
        await db.migrate(conn, ROOT / "sql")
        await db.add_site(conn, "demo", [])
        await conn.close()

        port = free_port()
        env = {**os.environ, "BINOME_DATABASE_URL": url, "BINOME_SPOOL_DIR": str(work / "spool"),
               "BINOME_RATE_LIMIT_PER_MINUTE": "0"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log = (work / "serve.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "serve", "--port", str(port),
             "--workers", str(args.workers)], env=env, stdout=log, stderr=subprocess.STDOUT,
            cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await client.get(base + "/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"binome serve did not start; see {work / 'serve.log'}")
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # every worker up

            load = Load(base, args.concurrency)
            wrk = None
            if args.load == "wrk":
                duration = args.before + args.outage + args.after
                wrk = await asyncio.create_subprocess_exec(
                    "wrk", "-t2", f"-c{args.concurrency}", f"-d{duration:.0f}s", "--timeout", "10s",
                    "-s", str(BENCH_DIR / "outage_beacons.lua"), base + "/beacon",
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
                load_task = asyncio.create_task(wrk.communicate())
            else:
                load_task = asyncio.create_task(load.run())
            await asyncio.sleep(args.before)
            print(f"stopping PostgreSQL for {args.outage:.0f} s ...", file=sys.stderr)
            at_stop = await metrics(client, base)
            await asyncio.to_thread(cluster.stop)
            down_at = time.monotonic()
            await asyncio.sleep(args.outage)
            before_restart = await metrics(client, base)
            await asyncio.to_thread(cluster.start)
            up_at = time.monotonic()
            print("PostgreSQL started; waiting for the spool to drain ...", file=sys.stderr)
            while True:
                figures = await metrics(client, base)
                if figures.get("binome_spool_bytes", 1) == 0 and not figures.get("binome_spooling"):
                    break
                if time.monotonic() - up_at > 600:
                    raise SystemExit("the spool did not drain in 10 minutes")
                await asyncio.sleep(0.05)
            drained_at = time.monotonic()
            after = figures
            load.running = False
            load_output = await load_task
            await asyncio.sleep(1.0)  # the last batches (batch_max_ms) reach PostgreSQL
            final = await metrics(client, base)

        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(60)
        process = None

        conn = await asyncpg.connect(url)
        rows = await conn.fetch("SELECT pv FROM binome.beacons")
        await conn.close()
        stored = [r["pv"] for r in rows]
        accepted_total = int(final["binome_beacons_accepted_total"])
        during = int(before_restart["binome_beacons_accepted_total"]
                     - at_stop["binome_beacons_accepted_total"])
        drain = drained_at - up_at
        replayed = after.get("binome_beacons_replayed_total", 0) - before_restart.get(
            "binome_beacons_replayed_total", 0)
        result: dict[str, Any] = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "load": args.load, "workers": args.workers, "concurrency": args.concurrency,
            "cpus": os.cpu_count(), "outage_seconds": args.outage,
            "accepted_total": accepted_total,
            "accepted_during_outage": during,
            "accepted_per_second_during_outage": round(during / (up_at - down_at)),
            "rejected_total": int(final.get("binome_beacons_received_total", 0)) - accepted_total,
            "spool_at_restart_bytes": before_restart.get("binome_spool_bytes"),
            "spooled_total": after.get("binome_beacons_spooled_total"),
            "drain_seconds": round(drain, 2),
            "replayed": int(replayed),
            "replay_rate_per_second": round(replayed / drain) if drain > 0 else None,
            "stored": len(stored),
            "stored_distinct": len(set(stored)),
            "dropped": final.get("binome_beacons_dropped_total"),
            "serve_exit_code": exit_code,
        }
        if args.load == "python":
            accepted = {pv for _at, pv in load.accepted}
            result["client_statuses"] = {str(k): v for k, v in load.statuses.items()}
            result["accepted_not_stored"] = len(accepted - set(stored))
            ok = result["accepted_not_stored"] == 0
        else:
            result["wrk"] = load_output[0].decode().strip().splitlines()[-1]
            ok = True
        ok = ok and len(stored) == len(set(stored)) == accepted_total and exit_code == 0
        print(json.dumps(result, indent=2))
        (BENCH_DIR / "results").mkdir(exist_ok=True)
        out = BENCH_DIR / "results" / f"outage-{result['when'].replace(':', '')}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        return 0 if ok else 1
    finally:
        if process is not None:
            process.kill()
        cluster.remove()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
