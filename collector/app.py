"""Assembly only: settings -> pool, site registry, writer -> routes."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from collector import PROJECT_ROOT, db, telemetry
from collector.beacon import json_schema
from collector.ingest import BeaconIngest
from collector.logs import configure_logging
from collector.maintenance import periodic_maintenance
from collector.settings import Settings, get_settings
from collector.sites import SiteRegistry
from collector.writer import BeaconWriter

log = logging.getLogger(__name__)

DEMO_DIR = PROJECT_ROOT / "demo"

# Sites embed /binome.js in every page: a short max-age lets a fix reach every
# visitor within minutes, and the strong ETag makes each revalidation a cheap
# 304. A long max-age would pin a buggy snippet in caches for days.
SNIPPET_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=86400"


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    if not settings.database_url:
        raise RuntimeError("BINOME_DATABASE_URL is not set (binome serve sets it for you)")
    state: dict[str, object] = {}
    snippet = _Snippet(settings.snippet_path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await db.create_pool(settings.database_url or "")
        writer = BeaconWriter(
            settings.database_url or "",
            batch_max_rows=settings.batch_max_rows,
            batch_max_ms=settings.batch_max_ms,
            queue_max=settings.queue_max,
        )
        sites = SiteRegistry(pool, settings.sites_refresh_seconds)
        await sites.refresh()
        await writer.start()
        state.update(pool=pool, writer=writer, ingest=BeaconIngest(settings, sites, writer))
        log.info("collector started")
        try:
            async with periodic_maintenance(settings.database_url or "", settings):
                yield
        finally:
            await writer.stop()
            await pool.close()
            log.info("collector stopped")

    async def post_beacon(request: Request) -> Response:
        return await state["ingest"].post(request)  # type: ignore[attr-defined]

    async def preflight_beacon(request: Request) -> Response:
        return await state["ingest"].preflight(request)  # type: ignore[attr-defined]

    async def beacon_schema(request: Request) -> Response:
        return Response(orjson.dumps(json_schema()), media_type="application/schema+json")

    async def binome_js(request: Request) -> Response:
        return snippet.response(request)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        writer: BeaconWriter = state["writer"]  # type: ignore[assignment]
        try:
            await writer.ping()
        except Exception as exc:  # any failure to reach PostgreSQL means "not ready"
            return JSONResponse({"status": "unavailable", "reason": f"database: {exc}"}, 503)
        if writer.full:
            return JSONResponse({"status": "unavailable", "reason": "write queue full"}, 503)
        return JSONResponse({"status": "ready", "queue_depth": writer.depth})

    async def metrics(request: Request) -> Response:
        telemetry.QUEUE_DEPTH.set(state["writer"].depth)  # type: ignore[attr-defined]
        body, content_type = telemetry.render()
        return Response(body, media_type=content_type)

    async def dashboard(request: Request) -> Response:
        if not _dashboard_allowed(request, settings.dashboard_token):
            return JSONResponse({"error": "unauthorized", "detail": "token required"}, 401,
                                headers={"WWW-Authenticate": "Bearer"})
        return HTMLResponse(await _dashboard_html(state["pool"]))  # type: ignore[arg-type]

    async def demo_index(request: Request) -> Response:
        index = DEMO_DIR / "index.html"
        if not index.is_file():
            return JSONResponse({"error": "not_found", "detail": "no demo page"}, 404)
        return FileResponse(index)

    routes = [
        Route("/beacon", post_beacon, methods=["POST"]),
        Route("/beacon", preflight_beacon, methods=["OPTIONS"]),
        Route("/binome.js", binome_js, methods=["GET", "HEAD"]),
        Route("/beacon.schema.json", beacon_schema),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/dashboard", dashboard),
        Route("/", demo_index),
        Mount("/demo", StaticFiles(directory=DEMO_DIR, check_dir=False)),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class _Snippet:
    """The built snippet, read once, served with a strong ETag."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._body: bytes | None = None
        self._etag = ""

    def response(self, request: Request) -> Response:
        if self._body is None:
            try:
                self._body = self._path.read_bytes()
            except OSError:
                return JSONResponse({"error": "not_built", "detail": str(self._path)}, 404)
            self._etag = '"' + hashlib.sha256(self._body).hexdigest()[:32] + '"'
        headers = {"ETag": self._etag, "Cache-Control": SNIPPET_CACHE_CONTROL,
                   "Access-Control-Allow-Origin": "*"}
        if self._etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(self._body, media_type="text/javascript; charset=utf-8", headers=headers)


def _dashboard_allowed(request: Request, token: str | None) -> bool:
    if token:
        given = request.query_params.get("token") or ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), token.encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _dashboard_html(pool: object) -> str:
    from collector.dashboard import render_dashboard

    return await render_dashboard(pool)  # type: ignore[arg-type]
