"""Assembly only: settings -> pool, site registry, writer -> routes."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from collector import PROJECT_ROOT, db, telemetry
from collector.access import BearerToken, DashboardAccess
from collector.beacon import json_schema
from collector.dashboard import (BUSY_RETRY_AFTER_SECONDS, Busy, FilterError, ScorecardCache,
                                 parse_filters, parse_site)
from collector.ingest import BeaconIngest, CollectorApp
from collector.logs import configure_logging
from collector.folder import PageViewFolder
from collector.maintenance import periodic_maintenance
from collector.session_keys import SessionKeys
from collector.settings import Settings, get_settings
from collector.sites import CACHE_NAME as SITES_CACHE
from collector.sites import SiteRegistry
from collector.spool import Spool
from collector.writer import BeaconWriter

log = logging.getLogger(__name__)

DEMO_DIR = PROJECT_ROOT / "demo"
DASHBOARD_DIR = PROJECT_ROOT / "dashboard"

# Sites embed /binome.js in every page: a short max-age lets a fix reach every
# visitor within minutes, and the strong ETag makes each revalidation a cheap
# 304. A long max-age would pin a buggy snippet in caches for days.
SNIPPET_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=86400"
# The sign-in form's body: one token field.
SIGN_IN_MAX_BYTES = 4096


def create_app(settings: Settings | None = None, *, demo: bool = False) -> Starlette:
    """The collector; with `demo`, the demo shop's pages too (`binome serve --demo`):
    a collector serves nothing at `/` otherwise (issue 24)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    if not settings.database_url:
        raise RuntimeError("BINOME_DATABASE_URL is not set (binome serve sets it for you)")
    state: dict[str, object] = {}
    snippet = _Snippet(settings.snippet_path)
    dashboard_page = _DashboardPage(DASHBOARD_DIR)
    access = DashboardAccess(settings)
    metrics_access = BearerToken(settings.metrics_token)

    @contextlib.asynccontextmanager
    async def lifespan(app: CollectorApp) -> AsyncIterator[None]:
        # min_size=0: no pool floor to restore (and log about) while PostgreSQL is down.
        pool = await db.create_pool(settings.database_url or "", min_size=0)
        folder = (PageViewFolder(settings.database_url or "", max_lag=settings.fold_max_lag_seconds)
                  if settings.deferred_fold else None)
        writer = BeaconWriter(
            settings.database_url or "",
            batch_max_rows=settings.batch_max_rows,
            batch_max_ms=settings.batch_max_ms,
            queue_max=settings.queue_max,
            spool=Spool(settings.spool_path, max_bytes=settings.spool_max_bytes),
            on_written=folder.notify if folder else None,
            durable=settings.durable,
            # `binome serve` found PostgreSQL down: migrate once it answers, before
            # anything is written (the spool waits until then).
            before_first_write=(
                functools.partial(db.migrate_at, settings.migration_database_url
                                  or settings.database_url or "", settings.sql_dir,
                                  settings.retention_months)
                if os.environ.get(db.MIGRATION_DEFERRED_ENV) else None),
        )
        sites = SiteRegistry(pool, settings.sites_refresh_seconds,
                             cache=settings.spool_path / SITES_CACHE)
        await sites.start()
        if folder:
            await folder.start()
        await writer.start()
        session_keys = SessionKeys(pool)  # the day keys of the session pseudonyms
        await session_keys.start()
        ingest = BeaconIngest(settings, sites, writer, session_keys)
        # The dashboard reads schema rum as its own role (binome_analyst), which
        # the collector's binome_writer may not (issue 20); unset: the same pool.
        dashboard_pool = (await db.create_pool(settings.dashboard_database_url, min_size=0)
                          if settings.dashboard_database_url else pool)
        scorecards = ScorecardCache(dashboard_pool,
                                    objective_check_minutes=settings.objective_check_minutes)
        state.update(pool=pool, writer=writer, ingest=ingest, scorecards=scorecards)
        app.ingest = ingest
        # What start-up built (modules, settings, the pool) lives as long as the
        # process: frozen out of the collector's sight, the full collections that
        # every few thousand beacons trigger no longer walk it (shorter pauses,
        # a lower p99).
        gc.freeze()
        log.info("collector started")
        try:
            async with periodic_maintenance(settings.database_url or "", settings):
                yield
        finally:
            # uvicorn has stopped accepting connections; a beacon still arriving
            # now is answered 503 (writer.offer refuses once closing).
            log.info("collector stopping: flushing the queue")
            await scorecards.close()
            await writer.stop()
            await session_keys.stop()
            if folder:
                await folder.stop()
            await pool.close()
            if dashboard_pool is not pool:
                await dashboard_pool.close()
            telemetry.mark_process_dead()
            log.info("collector stopped", extra={"spool_bytes": writer.spool_usage()[0]})

    async def beacon_schema(request: Request) -> Response:
        return Response(orjson.dumps(json_schema()), media_type="application/schema+json")

    async def openapi(request: Request) -> Response:
        from collector.openapi import openapi_document

        return Response(orjson.dumps(openapi_document()), media_type="application/json")

    async def binome_js(request: Request) -> Response:
        return snippet.response(request)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        writer: BeaconWriter = state["writer"]  # type: ignore[assignment]
        spool_bytes, spool_files = writer.spool_usage()
        figures = {"queue_depth": writer.depth, "spool_bytes": spool_bytes,
                   "spool_files": spool_files, "spooling": writer.spooling}
        reasons = []
        try:
            await writer.ping()
        except Exception as exc:  # any failure to reach PostgreSQL means "not ready"
            # A short reason: the driver's text names hosts, ports, roles and
            # databases, which an unauthenticated route must not tell (issue 20).
            log.debug("readiness: database unreachable", extra={"error": repr(exc)})
            reasons.append("database unreachable")
        writer_reason = writer.unready_reason()
        if writer_reason is not None:
            reasons.append(writer_reason)
        elif reasons and writer.spooling:
            reasons.append(f"spooling to disk ({spool_bytes} bytes in {spool_files} files)")
        if reasons:
            return JSONResponse({"status": "unavailable", "reason": "; ".join(reasons),
                                 **figures}, 503)
        return JSONResponse({"status": "ready", **figures})

    async def metrics(request: Request) -> Response:
        if refusal := metrics_access.refusal(request):
            return refusal
        writer: BeaconWriter = state["writer"]  # type: ignore[assignment]
        telemetry.QUEUE_DEPTH.set(writer.depth)
        spool_bytes, spool_files = writer.spool_usage()
        telemetry.SPOOL_BYTES.set(spool_bytes)
        telemetry.SPOOL_FILES.set(spool_files)
        body, content_type = telemetry.render()
        return Response(body, media_type=content_type)

    async def dashboard(request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None and (signed_in := access.sign_in(request, given)):
            return signed_in
        if refusal := access.refusal(request):
            return dashboard_page.sign_in(refusal, request)
        return dashboard_page.response()

    async def dashboard_sign_in(request: Request) -> Response:
        """The sign-in form's POST: token=... (a form field, so never in a URL)."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > SIGN_IN_MAX_BYTES:
                return JSONResponse({"error": "too_large", "detail": "a token is not that long"},
                                    413)
        given = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
        return access.sign_in(request, given) or dashboard_page.sign_in(access.wrong_token(),
                                                                         request)

    async def dashboard_data(request: Request) -> Response:
        if refusal := access.refusal(request):
            return refusal
        try:
            filters = parse_filters(request.query_params, dt.datetime.now(dt.UTC).date())
        except FilterError as exc:
            return JSONResponse({"error": "bad_filter", "detail": str(exc)}, 400)
        try:
            figures = await state["scorecards"].get(filters)  # type: ignore[attr-defined]
        except asyncpg.QueryCanceledError:
            return JSONResponse({"error": "too_slow", "detail": "the rum views took too long"},
                                503, headers={"Retry-After": "60"})
        except Busy as exc:
            return JSONResponse({"error": "busy", "detail": f"{exc}; try again shortly"}, 503,
                                headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})
        return Response(orjson.dumps(figures), media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    async def dashboard_proof(request: Request) -> Response:
        """The differences and what speed is worth of ?site=, as known now: a page
        whose figures came with `proof: {"pending": true}` asks again (issue 21)."""
        if refusal := access.refusal(request):
            return refusal
        try:
            site = parse_site(request.query_params)
        except FilterError as exc:
            return JSONResponse({"error": "bad_filter", "detail": str(exc)}, 400)
        answer = state["scorecards"].proof(site)  # type: ignore[attr-defined]
        return Response(orjson.dumps(answer), media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    async def demo_index(request: Request) -> Response:
        index = DEMO_DIR / "index.html"
        if not index.is_file():
            return JSONResponse({"error": "not_found", "detail": "no demo page"}, 404)
        return FileResponse(index)

    routes = [
        # POST and OPTIONS /beacon are answered by CollectorApp before the router;
        # this route only gives other methods their 405.
        Route("/beacon", _not_started, methods=["POST", "OPTIONS"]),
        Route("/binome.js", binome_js, methods=["GET", "HEAD"]),
        Route("/beacon.schema.json", beacon_schema),
        Route("/openapi.json", openapi),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/dashboard", dashboard),
        Route("/dashboard/data", dashboard_data),
        Route("/dashboard/proof", dashboard_proof),
        Route("/dashboard/sign-in", dashboard_sign_in, methods=["POST"]),
        # Code and styles only (no figures): served without the token, like /binome.js.
        Mount("/dashboard/assets", StaticFiles(directory=DASHBOARD_DIR / "dist", check_dir=False)),
    ]
    if demo:
        routes += [Route("/", demo_index),
                   Mount("/demo", StaticFiles(directory=DEMO_DIR, check_dir=False))]
    return CollectorApp(routes=routes, lifespan=lifespan, max_requests=settings.max_connections)


def create_demo_app() -> Starlette:
    """uvicorn's factory for `binome serve --demo` (each worker imports it)."""
    return create_app(demo=True)


async def _not_started(request: Request) -> Response:
    return JSONResponse({"error": "shutting_down", "detail": "the collector is not running"},
                        503, headers={"Retry-After": "5"})


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


class _DashboardPage:
    """dashboard/index.html with its assets' URLs versioned by their content."""

    # Nothing from outside the collector, no inline script, no Referer sent anywhere.
    HEADERS = {
        "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._html: str | None = None

    def response(self) -> Response:
        if self._html is None:
            try:
                html = (self._directory / "index.html").read_text()
                bundle = b"".join((self._directory / "dist" / name).read_bytes()
                                  for name in ("dashboard.js", "dashboard.css"))
            except OSError as exc:
                return JSONResponse({"error": "not_built", "detail": str(exc)}, 404)
            self._html = html.replace("{{version}}", hashlib.sha256(bundle).hexdigest()[:12])
        return HTMLResponse(self._html, headers=self.HEADERS)

    def sign_in(self, refusal: Response, request: Request) -> Response:
        """A browser refused for want of the token gets the sign-in form (still 401)."""
        if refusal.status_code != 401 or "text/html" not in request.headers.get("accept", ""):
            return refusal
        try:
            form = (self._directory / "sign-in.html").read_bytes()
        except OSError:
            return refusal
        headers = {**self.HEADERS, **refusal.headers, "Content-Security-Policy":
                   "default-src 'none'; form-action 'self'; base-uri 'none'; "
                   "frame-ancestors 'none'"}
        headers.pop("content-length", None)
        headers.pop("content-type", None)
        return HTMLResponse(form, 401, headers=headers)
