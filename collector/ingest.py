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

Every page view of every visitor passes here, so this is a plain ASGI
application (CollectorApp calls it before Starlette's middleware and router): it reads the
few headers it needs straight from the ASGI scope and answers with two ASGI
messages, without Starlette's Request, Response and routing, which cost as
much as the checks themselves (docs/performance.md). `binome serve` goes one
step further: its HTTP protocol (collector/server.py) calls the same steps
(check_request, parse, accept) straight from the HTTP parser's callbacks, with
no ASGI at all, and hands a beacon back to this route only when it must wait.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.applications import Starlette

from collector import telemetry
from collector.beacon import Beacon as BeaconModel
from collector.beacon import BeaconError
from collector.beacon_decoder import Beacon as MirrorBeacon
from collector.beacon_decoder import parse as parse_beacon
from collector.caps import BeaconCaps
from collector.deadlines import DeadlineSweep
from collector.enrich import to_record
from collector.proxies import ClientAddress
from collector.ratelimit import RateLimiter
from collector.settings import Settings
from collector.sites import SiteRegistry, Stale, origin_of
from collector.useragents import automation_reason
from collector.writer import BeaconWriter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

UNKNOWN_SITE = "(unknown)"
_ACCEPTED_TYPES = frozenset({"text/plain", "application/json"})
_PREFLIGHT_HEADERS: Headers = [
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type"),
    (b"access-control-max-age", b"86400"),
]
_JSON = (b"content-type", b"application/json")
AnyBeacon = MirrorBeacon | BeaconModel
# (status, headers, body): the answer to one beacon, before CORS and framing.
Answer = tuple[int, Headers, bytes]
_ACCEPTED: Answer = (204, [], b"")
# Set in the scope by binome serve's fast path when it hands a request back to
# this route with its request already checked: when it was received.
RECEIVED_AT = "binome.received_at"


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


class BodyDeadlines:
    """Cuts off body reads past their deadline: a DeadlineSweep (one timer for
    every request, collector/deadlines.py) that cancels the reading task; a
    trickling client is cut off within DeadlineSweep.TICK_S (0.25 s) of its deadline."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._sweep: DeadlineSweep[asyncio.Task[Any]] = DeadlineSweep(seconds, self._expire)
        self._expired: set[asyncio.Task[Any]] = set()

    def start(self, task: asyncio.Task[Any]) -> None:
        self._sweep.start(task)

    def finish(self, task: asyncio.Task[Any]) -> None:
        self._sweep.finish(task)

    def cut_off(self, task: asyncio.Task[Any]) -> bool:
        """Whether the task's CancelledError is its deadline's alone (then withdrawn);
        False when the server cancelled it too, as asyncio.timeout decides."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0

    def close(self) -> None:
        self._sweep.close()

    def _expire(self, task: asyncio.Task[Any]) -> None:
        # The task waits in receive(), its only await while registered: the
        # cancellation lands there.
        self._expired.add(task)
        task.cancel()


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
        self._body_deadlines = BodyDeadlines(settings.body_timeout_seconds)
        self._session_per_day = settings.session_id_per_day
        self._store_automated = settings.store_automated
        self._country_headers = [
            h.strip().lower() for h in settings.country_headers.split(",") if h.strip()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            await self._preflight(scope, send)
            return
        headers = header_dict(scope["headers"])
        status, extra, body = await self._post(scope, headers, receive)
        await send({"type": "http.response.start", "status": status,
                    "headers": answer_headers(headers, extra, body)})
        await send({"type": "http.response.body", "body": body})

    async def _post(self, scope: Scope, headers: dict[str, str],
                    receive: Receive) -> Answer:
        """The answer to one beacon, read through ASGI."""
        received_at = scope.get(RECEIVED_AT)
        if received_at is None:  # not checked yet by binome serve's fast path
            received_at = time.time()
            client = scope.get("client")
            refusal = self.check_request(headers, client[0] if client else "")
            if refusal is not None:
                return refusal

        # A client trickling its body must not hold the request open for long.
        task = asyncio.current_task()
        assert task is not None
        self._body_deadlines.start(task)
        try:
            body = await self._read_body(receive)
        except asyncio.CancelledError:
            if not self._body_deadlines.cut_off(task):
                raise
            return self.body_timeout()
        except BodyTooLarge:
            return self.body_too_large()
        except ClientGone:
            return self.client_gone()
        finally:
            self._body_deadlines.finish(task)

        beacon = self.parse(body)
        if isinstance(beacon, tuple):
            return beacon
        origins = await self._sites.origins(beacon.site)
        return self.accept(beacon, origins, headers, received_at)

    # The steps of a beacon's answer, shared by the ASGI route above and by
    # binome serve's fast path (collector/server.py), which calls them straight
    # from the HTTP parser's callbacks.

    def check_request(self, headers: dict[str, str], peer: str) -> Answer | None:
        """What can be refused before the body is read, or None."""
        telemetry.BEACONS_RECEIVED.inc()
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in _ACCEPTED_TYPES:
            return self._refuse(415, "unsupported_media_type",
                                "send the beacon as text/plain or application/json")
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_body):
            return self.body_too_large()
        if not self._rate_limiter.allow(self._client_address.resolve(peer, headers)):
            return self._refuse(429, "rate_limited", "too many beacons from this client",
                                [(b"retry-after", b"60")])
        return None

    @property
    def max_body(self) -> int:
        return self._max_body

    def body_too_large(self) -> Answer:
        return self._refuse(413, "body_too_large", f"at most {self._max_body} bytes")

    def body_timeout(self) -> Answer:
        return self._refuse(408, "body_timeout", f"the body took over "
                            f"{self._body_deadlines.seconds:g} s to arrive",
                            [(b"connection", b"close")])

    def client_gone(self) -> Answer:
        return self._refuse(400, "incomplete_body", "the client went away")

    @property
    def body_timeout_seconds(self) -> float:
        return self._body_deadlines.seconds

    def parse(self, body: bytes) -> AnyBeacon | Answer:
        try:
            return parse_beacon(body)
        except BeaconError as exc:
            return self._refuse(400, exc.code, exc.detail)

    def cached_origins(self, site: str) -> frozenset[str] | None | Stale:
        """The site's origins if the registry need not be re-read first."""
        return self._sites.cached_origins(site)

    def accept(self, beacon: AnyBeacon, origins: frozenset[str] | None,
               headers: dict[str, str], received_at: float) -> Answer:
        """The rest of the answer, once the site's origins are known: the origin,
        automated traffic, the caps, then the hand-off to the writer."""
        if origins is None:
            return self._refuse(403, "unknown_site", f"site {beacon.site!r} is not registered")
        if origins and not _origin_allowed(headers.get("origin"), beacon.url, origins):
            return self._refuse(403, "origin_not_allowed",
                                f"this origin may not send beacons for {beacon.site!r}",
                                site=beacon.site)

        user_agent = headers.get("user-agent", "")
        automated = None if self._store_automated else automation_reason(user_agent)
        if automated is not None:
            # 204 so that nothing retries; counted, never stored as a page view.
            telemetry.BEACONS_REJECTED.labels(automated).inc()
            telemetry.INGEST_COUNTS.add(beacon.site, received=1, rejected=1, at=received_at)
            return _ACCEPTED

        capped = self._caps.refusal(beacon.site, beacon.pv, beacon.sid, beacon.seq)
        if capped is not None:
            what = "page view" if capped == "page_view_cap" else "session"
            return self._refuse(429, capped, f"too many beacons for this {what}",
                                site=beacon.site)

        record = to_record(
            beacon,
            dt.datetime.fromtimestamp(received_at, dt.UTC),
            user_agent,
            self._country(headers),
            session_per_day=self._session_per_day,
        )
        if not self._writer.offer(record):
            if self._writer.closing:
                return self._refuse(503, "shutting_down", "the collector is restarting; retry",
                                    [(b"retry-after", b"5")], site=beacon.site)
            if self._writer.spool_full:
                # PostgreSQL is down and the disk spool is full: the outage may last.
                return self._refuse(503, "overloaded", "the collector cannot keep more beacons "
                                    "now; retry later", [(b"retry-after", b"30")],
                                    site=beacon.site)
            return self._refuse(503, "overloaded", "the collector is catching up; retry later",
                                [(b"retry-after", b"5")], site=beacon.site)
        self._caps.count(beacon.site, beacon.pv, beacon.sid)
        telemetry.BEACONS_ACCEPTED.inc()
        telemetry.INGEST_COUNTS.add(beacon.site, received=1, accepted=1, at=received_at)
        return _ACCEPTED

    def close(self) -> None:
        self._body_deadlines.close()

    async def _preflight(self, scope: Scope, send: Send) -> None:
        # The last Origin header, as the POST path's header dict keeps it.
        origins = [value for name, value in scope["headers"] if name == b"origin" and value]
        origin = origins[-1] if origins else None
        allow = _echo_origin(origin) if origin else [(b"access-control-allow-origin", b"*")]
        headers = [*allow, *_PREFLIGHT_HEADERS]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _read_body(self, receive: Receive) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _country(self, headers: dict[str, str]) -> str | None:
        for header in self._country_headers:
            value = headers.get(header)
            if value:
                code = value.strip().upper()
                # XX: unknown, T1: Tor (Cloudflare's conventions) say nothing of a country.
                if len(code) == 2 and code.isalpha() and code not in ("XX", "T1"):
                    return code
                return None
        return None

    def _refuse(self, status: int, code: str, detail: Any, extra_headers: Headers | None = None,
                site: str = UNKNOWN_SITE) -> Answer:
        telemetry.BEACONS_REJECTED.labels(code).inc()
        telemetry.INGEST_COUNTS.add(site, received=1, rejected=1)
        return status, extra_headers or [], orjson.dumps({"error": code, "detail": detail})


class CollectorApp(Starlette):
    """The collector's Starlette application, with POST and OPTIONS /beacon
    answered before Starlette's middleware and router (BeaconIngest never
    raises: what it cannot handle, uvicorn answers 500 and logs)."""

    ingest: BeaconIngest | None = None  # set once the lifespan has started the writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ingest = self.ingest
        if (ingest is not None and scope["type"] == "http" and scope["path"] == "/beacon"
                and scope["method"] in ("POST", "OPTIONS")):
            await ingest(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def header_dict(raw: Headers) -> dict[str, str]:
    """ASGI header names are lower-case bytes; values are latin-1 on the wire.
    A repeated header keeps its last value."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}


def answer_headers(headers: dict[str, str], extra: Headers, body: bytes) -> Headers:
    """The headers of an answer: CORS for the sender's origin, then the body's."""
    origin = headers.get("origin")
    if origin:
        extra = [*_echo_origin(origin.encode("latin-1")), *extra]
    if body:
        extra = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
    return extra


def _echo_origin(origin: bytes) -> Headers:
    """CORS headers that echo the sender's origin, so that a fetch() sender can read
    the answer (sendBeacon ignores it); Vary because the answer depends on it."""
    return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]


def _origin_allowed(header: str | None, page_url: str, allowed: frozenset[str]) -> bool:
    """Both the browser's Origin (when sent) and the page URL must be allowed.

    Browsers always send Origin with a POST; a server-side sender may omit it,
    but its beacon's `url` must still be a page of an allowed origin.
    """
    if header is not None and origin_of(header) not in allowed:
        return False
    return origin_of(page_url) in allowed
