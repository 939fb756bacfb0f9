"""POST /beacon and its CORS preflight: the collector's one hot route.

The order of checks is the order of their cost: content type and declared size
(nothing read), rate limit, the body read under the size cap and a deadline,
one-pass JSON parse and validation, the site and origin, automated traffic, the
caps per page view and session, then a non-blocking hand-off to the writer.
Every refusal is a JSON `{"error": CODE, "detail": ...}` and is counted;
nothing a client sends reaches a 500.

Beacons from bots, crawlers, headless browsers and clients without a
User-Agent are answered 204, as if accepted, so that nothing retries them, but
they are not stored: they count as rejected with the reason `bot`, `headless`
or `no_user_agent` (in /metrics and in rum.ingest_health), unless
BINOME_STORE_AUTOMATED asks to store them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from collector import telemetry
from collector.beacon import BeaconError, parse_beacon
from collector.caps import BeaconCaps
from collector.enrich import automation_reason, to_record
from collector.proxies import ClientAddress
from collector.ratelimit import RateLimiter
from collector.settings import Settings
from collector.sites import SiteRegistry, origin_of
from collector.writer import BeaconWriter

UNKNOWN_SITE = "(unknown)"
_ACCEPTED_TYPES = frozenset({"text/plain", "application/json"})
_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}


class BodyTooLarge(Exception):
    pass


class BeaconIngest:
    def __init__(self, settings: Settings, sites: SiteRegistry, writer: BeaconWriter) -> None:
        self._max_body = settings.max_body_bytes
        self._sites = sites
        self._writer = writer
        self._rate_limiter = RateLimiter(settings.rate_limit_per_minute)
        self._client_address = ClientAddress(settings.trusted_proxy_header,
                                             settings.trusted_proxy_hops, settings.trusted_proxies)
        self._caps = BeaconCaps(settings.max_beacons_per_page_view,
                                settings.max_beacons_per_session)
        self._body_timeout = settings.body_timeout_seconds
        self._session_per_day = settings.session_id_per_day
        self._store_automated = settings.store_automated
        self._country_headers = [
            h.strip().lower() for h in settings.country_headers.split(",") if h.strip()
        ]

    async def post(self, request: Request) -> Response:
        telemetry.BEACONS_RECEIVED.inc()
        received_at = time.time()
        cors = _cors_headers(request)

        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in _ACCEPTED_TYPES:
            return self._refuse(415, "unsupported_media_type",
                                "send the beacon as text/plain or application/json", cors)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_body):
            return self._refuse(413, "body_too_large", f"at most {self._max_body} bytes", cors)

        peer = request.client.host if request.client else ""
        if not self._rate_limiter.allow(self._client_address.resolve(peer, request.headers)):
            return self._refuse(429, "rate_limited", "too many beacons from this client", cors,
                                {"Retry-After": "60"})

        try:
            # A client trickling its body must not hold the request open for long.
            async with asyncio.timeout(self._body_timeout):
                body = await self._read_body(request)
        except BodyTooLarge:
            return self._refuse(413, "body_too_large", f"at most {self._max_body} bytes", cors)
        except ClientDisconnect:
            return self._refuse(400, "incomplete_body", "the client went away", cors)
        except TimeoutError:
            return self._refuse(408, "body_timeout",
                                f"the body took over {self._body_timeout:g} s to arrive", cors,
                                {"Connection": "close"})

        try:
            beacon = parse_beacon(body)
        except BeaconError as exc:
            return self._refuse(400, exc.code, exc.detail, cors)

        origins = await self._sites.origins(beacon.site)
        if origins is None:
            return self._refuse(403, "unknown_site", f"site {beacon.site!r} is not registered",
                                cors)
        if origins and not _origin_allowed(request, beacon.url, origins):
            return self._refuse(403, "origin_not_allowed",
                                f"this origin may not send beacons for {beacon.site!r}", cors,
                                site=beacon.site)

        user_agent = request.headers.get("user-agent", "")
        automated = None if self._store_automated else automation_reason(user_agent)
        if automated is not None:
            # 204 so that nothing retries; counted, never stored as a page view.
            telemetry.BEACONS_REJECTED.labels(automated).inc()
            self._writer.counts.add(beacon.site, received=1, rejected=1, at=received_at)
            return Response(status_code=204, headers=cors)

        capped = self._caps.refusal(beacon.site, beacon.pv, beacon.sid, beacon.seq)
        if capped is not None:
            what = "page view" if capped == "page_view_cap" else "session"
            return self._refuse(429, capped, f"too many beacons for this {what}", cors,
                                site=beacon.site)

        record = to_record(
            beacon,
            dt.datetime.fromtimestamp(received_at, dt.UTC),
            user_agent,
            self._country(request),
            session_per_day=self._session_per_day,
        )
        if not self._writer.offer(record):
            if self._writer.closing:
                return self._refuse(503, "shutting_down", "the collector is restarting; retry",
                                    cors, {"Retry-After": "5"}, site=beacon.site)
            if self._writer.spool_full:
                # PostgreSQL is down and the disk spool is full: the outage may last.
                return self._refuse(503, "overloaded", "the collector cannot keep more beacons "
                                    "now; retry later", cors, {"Retry-After": "30"},
                                    site=beacon.site)
            return self._refuse(503, "overloaded", "the collector is catching up; retry later",
                                cors, {"Retry-After": "5"}, site=beacon.site)
        self._caps.count(beacon.site, beacon.pv, beacon.sid)
        telemetry.BEACONS_ACCEPTED.inc()
        self._writer.counts.add(beacon.site, received=1, accepted=1, at=received_at)
        return Response(status_code=204, headers=cors)

    async def preflight(self, request: Request) -> Response:
        headers = _cors_headers(request) or {"Access-Control-Allow-Origin": "*"}
        return Response(status_code=204, headers={**headers, **_PREFLIGHT_HEADERS})

    async def _read_body(self, request: Request) -> bytes:
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _country(self, request: Request) -> str | None:
        for header in self._country_headers:
            value = request.headers.get(header)
            if value:
                code = value.strip().upper()
                # XX: unknown, T1: Tor (Cloudflare's conventions) say nothing of a country.
                if len(code) == 2 and code.isalpha() and code not in ("XX", "T1"):
                    return code
                return None
        return None

    def _refuse(self, status: int, code: str, detail: Any, cors: dict[str, str],
                extra_headers: dict[str, str] | None = None, site: str = UNKNOWN_SITE) -> Response:
        telemetry.BEACONS_REJECTED.labels(code).inc()
        self._writer.counts.add(site, received=1, rejected=1)
        return Response(
            orjson.dumps({"error": code, "detail": detail}),
            status_code=status,
            media_type="application/json",
            headers={**cors, **(extra_headers or {})},
        )


def _cors_headers(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    if not origin:
        return {}
    # Echo the origin so a fetch() sender can read the answer; sendBeacon ignores it.
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _origin_allowed(request: Request, page_url: str, allowed: frozenset[str]) -> bool:
    """Both the browser's Origin (when sent) and the page URL must be allowed.

    Browsers always send Origin with a POST; a server-side sender may omit it,
    but its beacon's `url` must still be a page of an allowed origin.
    """
    header = request.headers.get("origin")
    if header is not None and origin_of(header) not in allowed:
        return False
    return origin_of(page_url) in allowed
