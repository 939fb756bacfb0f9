"""What the page-view fold costs per beacon, with collector-sized batches.

    .venv/bin/python bench/fold.py [--beacons 200000] [--sql-dir sql --sql-dir /other/checkout/sql]

For each --sql-dir (default: this checkout's sql/), creates a fresh database on
the server in BINOME_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres) and migrates it. Then it writes
beacons (bench/views.py's distributions: sessions of 1 to 6 page views, 1 to 3
beacons per page view) the way the collector does: COPY of a batch into a
temporary table, then INSERT ... SELECT into binome.beacons, one transaction
per batch. The INSERT is `INSERT INTO binome.beacons SELECT * FROM
incoming_beacons ON CONFLICT DO NOTHING`; --collector-move uses
collector/writer.py's statement instead, whose check for resends in other
partitions reads the whole of today's partition (a hash anti join) and so
costs more with every batch, which would swamp what this measures. Two streams per database, each with
its own connection and the same beacons under other ids (--preload stores a
day's page views first, --past-days creates the partitions a retention of
that many days keeps): one folded by the
trigger, one without it (session_replication_role = replica). Batches of all
streams are interleaved, so the load of the machine weighs on each alike.

Two orders of arrival:
  * whole:   a page view's beacons all in one batch (batches end between page views);
  * arrival: beacons in the order the collector receives them (received_at),
             so a page view's later beacons mostly come in a later batch and
             fold it again.

Reported per database and order: the PostgreSQL backend's CPU time per beacon
(/proc/PID/schedstat: the server must run on this machine) with and without
the fold, their difference (the fold's cost), and the median wall time of a
batch. The databases are dropped at the end (--keep keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.views import COL, SITES, day_rows, with_database
from collector import PROJECT_ROOT, db
from collector.row import COLUMNS
from collector.store import MOVE, STAGING

Row = tuple[Any, ...]


def backend_cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


@dataclass
class Stream:
    label: str
    conn: asyncpg.Connection
    pid: int
    batches: list[list[Row]]
    cpu_ns: int = 0
    beacons: int = 0
    walls: list[float] = field(default_factory=list)


def relabel(rows: list[Row], prefix: str) -> list[Row]:
    out = []
    for row in rows:
        r = list(row)
        r[COL["pv"]] = prefix + r[COL["pv"]]
        r[COL["sid"]] = prefix + r[COL["sid"]]
        out.append(tuple(r))
    return out


def batches_of(rows: list[Row], order: str, size: int) -> list[list[Row]]:
    if order == "arrival":
        rows = sorted(rows, key=lambda r: r[COL["received_at"]])
        return [rows[i:i + size] for i in range(0, len(rows), size)]
    out: list[list[Row]] = []
    chunk: list[Row] = []
    last_pv = None
    for row in rows:
        if len(chunk) >= size and row[COL["pv"]] != last_pv:
            out.append(chunk)
            chunk = []
        chunk.append(row)
        last_pv = row[COL["pv"]]
    if chunk:
        out.append(chunk)
    return out


SIMPLE_MOVE = "INSERT INTO binome.beacons SELECT * FROM incoming_beacons ON CONFLICT DO NOTHING"


async def write_batch(stream: Stream, rows: list[Row], move: str) -> None:
    before = backend_cpu_ns(stream.pid)
    started = time.perf_counter()
    async with stream.conn.transaction():
        await stream.conn.copy_records_to_table("incoming_beacons", records=rows,
                                                columns=COLUMNS)
        await stream.conn.execute(move)
    stream.walls.append((time.perf_counter() - started) * 1000)
    stream.cpu_ns += backend_cpu_ns(stream.pid) - before
    stream.beacons += len(rows)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beacons", type=int, default=200_000,
                        help="beacons per stream and order (about)")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--sql-dir", action="append", type=Path,
                        help="migrations and views to measure (repeatable)")
    parser.add_argument("--orders", default="whole,arrival")
    parser.add_argument("--preload", type=int, default=0,
                        help="page views stored today first (100,000-beacon statements)")
    parser.add_argument("--past-days", type=int, default=0,
                        help="daily partitions (empty) before today, as retention keeps")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--collector-move", action="store_true",
                        help="move batches with collector/writer.py's statement")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    sql_dirs: list[Path] = args.sql_dir or [PROJECT_ROOT / "sql"]
    move = MOVE if args.collector_move else SIMPLE_MOVE

    server = os.environ.get("BINOME_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin = await asyncpg.connect(server)
    names: list[str] = []
    conns: list[asyncpg.Connection] = []
    day = dt.datetime.now(dt.UTC).date()
    try:
        urls = []
        for _ in sql_dirs:
            name = "binome_foldbench_" + secrets.token_hex(4)
            await admin.execute(f'CREATE DATABASE "{name}"')
            names.append(name)
            urls.append(with_database(server, name))
        for sql_dir, url in zip(sql_dirs, urls, strict=True):
            conn = await db.connect(url)
            conns.append(conn)
            await db.migrate(conn, sql_dir)
            for site, _ in SITES:
                await db.add_site(conn, site, [])
            for n in range(-args.past_days, 2):
                await conn.execute("SELECT binome.ensure_beacon_partition($1)",
                                   day + dt.timedelta(days=n))

        if args.preload:
            rows = list(day_rows(random.Random(args.seed + 1), day, args.preload, 29))
            for conn in conns:
                started = time.perf_counter()
                for i in range(0, len(rows), 100_000):
                    await conn.copy_records_to_table("beacons", schema_name="binome",
                                                     records=relabel(rows[i:i + 100_000], "p"),
                                                     columns=COLUMNS)
                await conn.execute("VACUUM ANALYZE")
                print(f"preloaded {len(rows):,} beacons in {time.perf_counter() - started:.0f} s",
                      flush=True)
            del rows

        # ~2.3 beacons per page view.
        base = list(day_rows(random.Random(args.seed), day, int(args.beacons / 2.3), 29))
        for order in args.orders.split(","):
            streams: list[Stream] = []
            for n, (sql_dir, url) in enumerate(zip(sql_dirs, urls, strict=True)):
                for fold in (True, False):
                    conn = await db.connect(url)
                    conns.append(conn)
                    await conn.execute(STAGING)
                    if not fold:
                        await conn.execute("SET session_replication_role = replica")
                    prefix = f"{order[0]}{n}{'F' if fold else 'N'}"
                    label = f"{sql_dir} [{'with' if fold else 'without'} fold]"
                    pid = await conn.fetchval("SELECT pg_backend_pid()")
                    streams.append(Stream(label, conn, pid,
                                          batches_of(relabel(base, prefix), order, args.batch)))
            count = len(streams[0].batches)
            print(f"order {order}: {count} batches of ~{args.batch} beacons per stream, "
                  f"{len(streams)} streams interleaved", flush=True)
            started = time.perf_counter()
            for i in range(count):
                for stream in streams:
                    await write_batch(stream, stream.batches[i], move)
                if (i + 1) % 100 == 0:
                    print(f"  {i + 1}/{count} ({time.perf_counter() - started:.0f} s)", flush=True)
            for n in range(len(sql_dirs)):
                with_fold, without = streams[2 * n], streams[2 * n + 1]
                cpu_with = with_fold.cpu_ns / with_fold.beacons / 1000
                cpu_without = without.cpu_ns / without.beacons / 1000
                print(f"  {sql_dirs[n]}: backend CPU per beacon {cpu_with:.1f} µs with the fold,"
                      f" {cpu_without:.1f} µs without: the fold {cpu_with - cpu_without:.1f} µs"
                      f" ({cpu_with / cpu_without:.2f}x);"
                      f" median batch {statistics.median(with_fold.walls):.1f} ms with,"
                      f" {statistics.median(without.walls):.1f} ms without", flush=True)
            for stream in streams:
                await stream.conn.close()
                conns.remove(stream.conn)
        for conn in conns:
            checked = await conn.fetchval(
                "SELECT count(*) FROM binome.page_views")
            print(f"  {conn._params.database}: {checked:,} page views folded")
    finally:
        for conn in conns:
            await conn.close()
        for name in names:
            if args.keep:
                print(f"kept database {name}")
            else:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
