"""POST /beacon and its CORS preflight: the collector's one hot route.

A beacon's answer is a list of small steps, in the order of their cost
(`BeaconIngest._answer`): content type and declared size (nothing read), rate
limit, the body read under the size cap and a deadline, one-pass JSON parse and
validation, the site and origin, automated traffic, the caps per page view and
session, then the hand-off to the writer (non-blocking; with BINOME_DURABLE=true
awaited until the beacon is fsynced in the durable log). A step that refuses raises
`Refusal`: a JSON `{"error": CODE, "detail": ...}`, counted; nothing a client
sends reaches a 500.

Beacons from bots, crawlers, headless browsers and clients without a
User-Agent are answered 204, as if accepted, so that nothing retries them, but
they are not stored: they count as rejected with the reason `bot`, `headless`
or `no_user_agent` (in /metrics and in rum.ingest_health), unless
BINOME_STORE_AUTOMATED asks to store them.

Every page view of every visitor passes here, so this is a plain ASGI
application (CollectorApp calls it before Starlette's middleware and router):
it reads the few headers it needs straight from the ASGI scope and answers with
two ASGI messages, without Starlette's Request, Response and routing.
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
from collector.beacon import BeaconError
from collector.beacon_decoder import Beacon
from collector.beacon_decoder import parse as parse_beacon
from collector.caps import BeaconCaps
from collector.enrich import to_record
from collector.proxies import ClientAddress
from collector.ratelimit import RateLimiter
from collector.row import Record
from collector.rejections import MAX_ORIGIN_CHARS, NO_ORIGIN, REJECTIONS, bounded
from collector.session_keys import SessionKeys
from collector.settings import Settings
from collector.sites import SiteRegistry, normalize_origin, origin_of
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
# (status, headers, body): the answer to one beacon, before CORS and framing.
Answer = tuple[int, Headers, bytes]
_ACCEPTED: Answer = (204, [], b"")


class Refusal(Exception):
    """A step's refusal: the beacon's answer, already counted; noted in
    collector/rejections.py once answered, with the site as sent (None: not read
    yet) and the origin refused (None: the request's Origin header)."""

    def __init__(self, answer: Answer, reason: str, sent: str | None = None,
                 origin: str | None = None) -> None:
        self.answer = answer
        self.reason = reason
        self.sent = sent
        self.origin = origin


class BeaconIngest:
    def __init__(self, settings: Settings, sites: SiteRegistry, writer: BeaconWriter,
                 session_keys: SessionKeys | None = None) -> None:
        self._max_body = settings.max_body_bytes
        self._body_timeout = settings.body_timeout_seconds
        self._sites = sites
        self._writer = writer
        self._rate_limiter = RateLimiter(settings.rate_limit_per_minute)
        self._client_address = ClientAddress(settings.trusted_proxy_header,
                                             settings.trusted_proxy_hops, settings.trusted_proxies)
        self._caps = BeaconCaps(settings.max_beacons_per_page_view,
                                settings.max_beacons_per_session)
        self._session_per_day = settings.session_id_per_day
        self._session_keys = session_keys or SessionKeys()
        self._store_automated = settings.store_automated
        self._durable = writer.durable
        self._country_headers = [
            h.strip().lower() for h in settings.country_headers.split(",") if h.strip()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            await self._preflight(scope, send)
            return
        headers = header_dict(scope["headers"])
        try:
            status, extra, body = await self._answer(scope, headers, receive)
        except Refusal as refusal:
            status, extra, body = refusal.answer
            REJECTIONS.note(refusal.reason, refusal.sent,
                            refusal.origin or _origin_text(headers.get("origin")))
        await send({"type": "http.response.start", "status": status,
                    "headers": _answer_headers(headers, extra, body)})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, headers: dict[str, str], receive: Receive) -> Answer:
        """The steps of one beacon; each either passes or raises its Refusal."""
        received_at = time.time()
        telemetry.BEACONS_RECEIVED.inc()
        self._check_type_and_declared_size(headers)
        self._check_rate(scope, headers)
        body = await self._read_body_in_time(receive)
        beacon = self._parse(body)
        await self._check_site_and_origin(beacon, headers)
        user_agent = headers.get("user-agent", "")
        if self._is_automated(beacon, user_agent, received_at):
            return _ACCEPTED  # 204 so that nothing retries; counted, never stored
        self._check_caps(beacon)
        record = self._record(beacon, headers, user_agent, received_at)
        if self._durable:
            # Answered once the beacon is in the fsynced log (issue 23).
            accepted = await self._writer.offer_durably(record)
        else:
            accepted = self._writer.offer(record)
        self._count_hand_off(beacon, accepted, received_at)
        return _ACCEPTED

    def _check_type_and_declared_size(self, headers: dict[str, str]) -> None:
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in _ACCEPTED_TYPES:
            raise self._refuse(415, "unsupported_media_type",
                               "send the beacon as text/plain or application/json")
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_body):
            raise self._body_too_large()

    def _check_rate(self, scope: Scope, headers: dict[str, str]) -> None:
        client = scope.get("client")
        if not self._rate_limiter.allow(
                self._client_address.resolve(client[0] if client else "", headers)):
            raise self._refuse(429, "rate_limited", "too many beacons from this client",
                               [(b"retry-after", b"60")])

    async def _read_body_in_time(self, receive: Receive) -> bytes:
        """The body, cut off at its deadline: a client trickling its body must not
        hold the request open. A bare timer: asyncio.timeout does the same with
        several times the cost, paid on every beacon."""
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()  # lands in receive(), the only await while the timer runs

        timer = asyncio.get_running_loop().call_later(self._body_timeout, expire)
        try:
            return await self._read_body(receive)
        except asyncio.CancelledError:
            # Ours alone (then withdrawn), unless the server cancelled it too.
            if expired and task.uncancel() == 0:
                raise self._refuse(408, "body_timeout", f"the body took over "
                                   f"{self._body_timeout:g} s to arrive",
                                   [(b"connection", b"close")]) from None
            raise
        finally:
            timer.cancel()

    async def _read_body(self, receive: Receive) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise self._refuse(400, "incomplete_body", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise self._body_too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _parse(self, body: bytes) -> Beacon:
        try:
            return parse_beacon(body)
        except BeaconError as exc:
            raise self._refuse(400, exc.code, exc.detail) from None

    async def _check_site_and_origin(self, beacon: Beacon, headers: dict[str, str]) -> None:
        origins = await self._sites.origins(beacon.site)
        if origins is None and self._sites.unavailable:
            # PostgreSQL cannot say whether the site exists: come back (issue 20).
            raise self._refuse(503, "sites_unavailable",
                               f"site {beacon.site!r} cannot be checked now",
                               [(b"retry-after", b"30")], sent=beacon.site)
        if origins is None:
            # The site as sent matched the beacon's site-name pattern: bounded, plain.
            raise self._refuse(403, "unknown_site", f"site {beacon.site} is not registered",
                               sent=beacon.site)
        refused = _refused_origin(headers.get("origin"), beacon.url, origins) if origins else None
        if refused is not None:
            # Issue 24: the answer names what it refused, so a newcomer can fix it.
            raise self._refuse(403, "origin_not_allowed",
                               f"origin {refused} is not allowed for site {beacon.site}",
                               site=beacon.site, sent=beacon.site, origin=refused)

    def _is_automated(self, beacon: Beacon, user_agent: str, received_at: float) -> bool:
        automated = None if self._store_automated else automation_reason(user_agent)
        if automated is None:
            return False
        telemetry.BEACONS_REJECTED.labels(automated).inc()
        telemetry.INGEST_COUNTS.add(beacon.site, received=1, rejected=1, at=received_at)
        return True

    def _check_caps(self, beacon: Beacon) -> None:
        capped = self._caps.refusal(beacon.site, beacon.pv, beacon.sid, beacon.seq)
        if capped is not None:
            what = "page view" if capped == "page_view_cap" else "session"
            raise self._refuse(429, capped, f"too many beacons for this {what}",
                               site=beacon.site, sent=beacon.site)

    def _record(self, beacon: Beacon, headers: dict[str, str], user_agent: str,
                received_at: float) -> Record:
        return to_record(
            beacon,
            dt.datetime.fromtimestamp(received_at, dt.UTC),
            user_agent,
            self._country(headers),
            session_per_day=self._session_per_day,
            session_keys=self._session_keys,
        )

    def _count_hand_off(self, beacon: Beacon, accepted: bool, received_at: float) -> None:
        """Counts the writer's answer; raises the 503 of a refusal."""
        if not accepted:
            if self._writer.closing:
                raise self._refuse(503, "shutting_down", "the collector is restarting; retry",
                                   [(b"retry-after", b"5")], site=beacon.site,
                                   sent=beacon.site)
            if self._writer.spool_full:
                # PostgreSQL is down and the disk spool is full: the outage may last.
                raise self._refuse(503, "overloaded", "the collector cannot keep more beacons "
                                   "now; retry later", [(b"retry-after", b"30")],
                                   site=beacon.site, sent=beacon.site)
            raise self._refuse(503, "overloaded", "the collector is catching up; retry later",
                               [(b"retry-after", b"5")], site=beacon.site, sent=beacon.site)
        self._caps.count(beacon.site, beacon.pv, beacon.sid)
        telemetry.BEACONS_ACCEPTED.inc()
        telemetry.INGEST_COUNTS.add(beacon.site, received=1, accepted=1, at=received_at)

    def _body_too_large(self) -> Refusal:
        return self._refuse(413, "body_too_large", f"at most {self._max_body} bytes")

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
                site: str = UNKNOWN_SITE, sent: str | None = None,
                origin: str | None = None) -> Refusal:
        telemetry.BEACONS_REJECTED.labels(code).inc()
        telemetry.INGEST_COUNTS.add(site, received=1, rejected=1)
        return Refusal((status, extra_headers or [],
                        orjson.dumps({"error": code, "detail": detail})), code, sent, origin)

    async def _preflight(self, scope: Scope, send: Send) -> None:
        # The last Origin header, as the POST path's header dict keeps it.
        origins = [value for name, value in scope["headers"] if name == b"origin" and value]
        origin = origins[-1] if origins else None
        allow = _echo_origin(origin) if origin else [(b"access-control-allow-origin", b"*")]
        headers = [*allow, *_PREFLIGHT_HEADERS]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class CollectorApp(Starlette):
    """The collector's Starlette application, with POST and OPTIONS /beacon
    answered before Starlette's middleware and router (BeaconIngest never
    raises: what it cannot handle, uvicorn answers 500 and logs), and at most
    `max_requests` requests answered at once."""

    ingest: BeaconIngest | None = None  # set once the lifespan has started the writer

    def __init__(self, *args: Any, max_requests: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_requests = max_requests
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if self.requests >= self.max_requests:
            # Beyond it a JSON 503 with Retry-After (docs/beacon-format.md, "Routes"),
            # before uvicorn's limit_concurrency answers a bare one (collector/cli.py).
            await _overloaded(send)
            return
        self.requests += 1
        try:
            ingest = self.ingest
            if (ingest is not None and scope["path"] == "/beacon"
                    and scope["method"] in ("POST", "OPTIONS")):
                await ingest(scope, receive, send)
            else:
                await super().__call__(scope, receive, send)
        finally:
            self.requests -= 1


async def _overloaded(send: Send) -> None:
    body = orjson.dumps({"error": "overloaded", "detail": "too many requests at once; "
                         "retry later"})
    await send({"type": "http.response.start", "status": 503, "headers": [
        _JSON, (b"content-length", str(len(body)).encode()), (b"retry-after", b"5"),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def header_dict(raw: Headers) -> dict[str, str]:
    """ASGI header names are lower-case bytes; values are latin-1 on the wire.
    A repeated header keeps its last value."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}


def _answer_headers(headers: dict[str, str], extra: Headers, body: bytes) -> Headers:
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


def _refused_origin(header: str | None, page_url: str, allowed: frozenset[str]) -> str | None:
    """The origin not allowed, as text fit for an answer, or None when both the
    browser's Origin (when sent) and the page URL are allowed.

    Browsers always send Origin with a POST; a server-side sender may omit it,
    but its beacon's `url` must still be a page of an allowed origin.
    """
    if header is not None and origin_of(header) not in allowed:
        return _origin_text(header) or NO_ORIGIN  # an empty Origin is refused too
    if origin_of(page_url) not in allowed:
        return _origin_text(origin_of(page_url) or page_url) or NO_ORIGIN
    return None


def _origin_text(value: str | None) -> str | None:
    """An origin as received (client text): normalised when it is one, bounded always."""
    if not value:
        return None
    try:
        value = normalize_origin(value)
    except ValueError:
        pass  # not an origin: told as received, bounded
    return bounded(value, MAX_ORIGIN_CHARS)
