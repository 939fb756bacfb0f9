"""Reference designs bench/ingest.py measures beside the collector.

Each is a uvicorn app factory (run with `--factory`), served exactly like the
collector. They put the collector's figures in context:

- `bare_app`: the floor of Python + uvicorn + Starlette. POST /beacon reads the
  body and answers 204; nothing else. Every other design is a ratio of it.
- `insert_app`: the naive design. The collector's own pydantic model validates
  the raw body, then one `INSERT` per request through an asyncpg pool; the
  204 waits for PostgreSQL.
- `minibatch_app`: the least a batching design must do. The same pydantic
  validation, a tuple appended to a list, and a background task that COPYs the
  list into PostgreSQL every 200 ms or 500 rows. No enrichment (no URL
  scrubbing, referrer channel, user-agent parsing, consent rules), no
  idempotency beyond the primary key, no rate limit, no metrics.

Both database references write to `bench_ref.beacons` (REF_DDL) in the
database of BENCH_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator

import asyncpg
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.beacon import Beacon

REF_DDL = """
CREATE SCHEMA IF NOT EXISTS bench_ref;
CREATE TABLE IF NOT EXISTS bench_ref.beacons (
    site        text NOT NULL,
    pv          text NOT NULL,
    seq         integer NOT NULL,
    sid         text,
    received_at timestamptz NOT NULL,
    url         text NOT NULL,
    ref         text,
    user_agent  text,
    body        jsonb NOT NULL,
    PRIMARY KEY (site, pv, seq)
);
"""
REF_COLUMNS = ("site", "pv", "seq", "sid", "received_at", "url", "ref", "user_agent", "body")
_INSERT = (
    "INSERT INTO bench_ref.beacons (site, pv, seq, sid, received_at, url, ref, user_agent, body)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
)
BATCH_MAX_ROWS = 500
BATCH_MAX_S = 0.2
QUEUE_MAX = 20_000


def _database_url() -> str:
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        raise RuntimeError("BENCH_DATABASE_URL is not set")
    return url


async def _healthz(request: Request) -> Response:
    return Response(b"ok", media_type="text/plain")


def _app(beacon_route, lifespan=None) -> Starlette:  # type: ignore[no-untyped-def]
    return Starlette(
        routes=[Route("/beacon", beacon_route, methods=["POST"]), Route("/healthz", _healthz)],
        lifespan=lifespan,
    )


# -- (a) bare ----------------------------------------------------------------

def bare_app() -> Starlette:
    async def beacon(request: Request) -> Response:
        await request.body()
        return Response(status_code=204)

    return _app(beacon)


# -- (c) one INSERT per request --------------------------------------------------

def insert_app() -> Starlette:
    state: dict[str, asyncpg.Pool] = {}
    pool_size = int(os.environ.get("BENCH_POOL_SIZE", "8"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(
            _database_url(), min_size=pool_size, max_size=pool_size
        )
        try:
            yield
        finally:
            await state["pool"].close()

    async def beacon(request: Request) -> Response:
        body = await request.body()
        try:
            b = Beacon.model_validate_json(body)
        except ValidationError:
            return Response(status_code=400)
        await state["pool"].execute(
            _INSERT, b.site, b.pv, b.seq, b.sid, dt.datetime.now(dt.UTC), b.url, b.ref,
            request.headers.get("user-agent"), body.decode(),
        )
        return Response(status_code=204)

    return _app(beacon, lifespan)


# -- (d) minimal batch -----------------------------------------------------------

def minibatch_app() -> Starlette:
    rows: list[tuple[object, ...]] = []
    full = asyncio.Event()
    stopping = False

    async def flush(conn: asyncpg.Connection) -> None:
        if rows:
            batch = rows[:]
            rows.clear()
            await conn.copy_records_to_table(
                "beacons", schema_name="bench_ref", records=batch, columns=REF_COLUMNS
            )

    async def flusher(conn: asyncpg.Connection) -> None:
        while not stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(full.wait(), BATCH_MAX_S)
            full.clear()
            await flush(conn)
        await flush(conn)  # what was accepted is written before exit

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal stopping
        conn = await asyncpg.connect(_database_url())
        task = asyncio.create_task(flusher(conn))
        try:
            yield
        finally:
            stopping = True
            full.set()
            await task
            await conn.close()

    async def beacon(request: Request) -> Response:
        body = await request.body()
        try:
            b = Beacon.model_validate_json(body)
        except ValidationError:
            return Response(status_code=400)
        if len(rows) >= QUEUE_MAX:
            return Response(status_code=503)
        rows.append((b.site, b.pv, b.seq, b.sid, dt.datetime.now(dt.UTC), b.url, b.ref,
                     request.headers.get("user-agent"), body.decode()))
        if len(rows) >= BATCH_MAX_ROWS:
            full.set()
        return Response(status_code=204)

    return _app(beacon, lifespan)
