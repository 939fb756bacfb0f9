"""The HTTP server's limits: what `binome serve` hands uvicorn (SECURITY.md).

uvicorn bounds idle keep-alive connections, concurrency and the accept backlog,
but not the time a new connection may take to send its request line and
headers, nor their size: a client sending one header byte every few seconds
(slowloris) would hold its connection, and count against the concurrency
limit, forever. GuardedHttpToolsProtocol adds both limits to uvicorn's
httptools protocol. The body has its own deadline in the route
(collector/ingest.py), where the size cap is also enforced.

It also answers POST /beacon itself, from the parser's callbacks: the request
is checked once its headers are parsed and answered once its body is, by the
same steps as the ASGI route (BeaconIngest), without the request cycle, event,
task and messages uvicorn makes for every request: about 13 µs of the 86-93 a
beacon costs the server (docs/performance.md), on every page view. Every other
request, and a beacon that must wait (pipelined behind a request still being
answered, or for the site registry to be re-read), takes the ASGI path.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import orjson
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from collector.deadlines import DeadlineSweep
from collector.ingest import RECEIVED_AT, Answer, BeaconIngest, answer_headers, header_dict
from collector.settings import Settings, get_settings
from collector.sites import Stale

log = logging.getLogger(__name__)

# Request line plus headers. Browsers send 1-2 KiB to a collector on another
# origin; cookies of a parent domain can add a few KiB. h11's default is 16 KiB,
# nginx's 4 x 8 KiB.
MAX_HEADER_BYTES = 32 * 1024
KEEP_ALIVE_SECONDS = 5
BACKLOG = 2048
LINGER_SECONDS = 1.0


class HeadersTooLarge(Exception):
    pass


_INTERNAL_ERROR: Answer = (500, [(b"content-type", b"text/plain; charset=utf-8"),
                                 (b"content-length", b"21"), (b"connection", b"close")],
                           b"Internal Server Error")


class FastBeacon:
    """A POST /beacon being answered from the parser's callbacks."""

    __slots__ = ("ingest", "headers", "keep_alive", "received_at", "chunks", "size", "answered")

    def __init__(self, ingest: BeaconIngest, headers: dict[str, str], keep_alive: bool) -> None:
        self.ingest = ingest
        self.headers = headers
        self.keep_alive = keep_alive
        self.received_at = time.time()
        self.chunks: list[bytes] = []
        self.size = 0
        self.answered = False


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size cap on headers, and
    POST /beacon answered from the parser's callbacks."""

    max_header_bytes = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read here, not passed in: `--workers N` starts fresh processes that
        # only share the environment.
        self.header_timeout = get_settings().header_timeout_seconds
        self._header_deadlines = _deadlines(self.loop, self.header_timeout,
                                            GuardedHttpToolsProtocol._headers_too_slow)
        self._header_deadline_armed = False
        self._header_bytes = 0
        self._headers_too_large = False
        self._lingering = False
        self._beacon: FastBeacon | None = None
        self._reading_paused_for_writes = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        beacon = self._beacon
        if beacon is not None and not beacon.answered:
            # Counted as the ASGI route counts a client gone before its body ended.
            self._end_body(beacon)
            beacon.ingest.client_gone()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if not self._header_deadline_armed:
            self._arm_header_deadline()  # the next request on a kept-alive connection

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        ingest = self._fast_ingest()
        if ingest is None:
            super().on_headers_complete()
            return
        headers = header_dict(self.headers)
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        beacon = self._beacon = FastBeacon(ingest, headers, keep_alive)
        try:
            refusal = ingest.check_request(headers, self.client[0] if self.client else "")
        except Exception:
            self._failed(beacon)
            return
        if refusal is not None:
            self._answer(beacon, refusal)  # what follows of the body is dropped
        else:
            self._body_deadlines(ingest).start(self)

    def on_body(self, body: bytes) -> None:
        beacon = self._beacon
        if beacon is None:
            super().on_body(body)
            return
        if beacon.answered:
            return
        beacon.size += len(body)
        if beacon.size > beacon.ingest.max_body:
            self._end_body(beacon)
            self._answer(beacon, beacon.ingest.body_too_large())
            return
        beacon.chunks.append(body)

    def on_message_complete(self) -> None:
        beacon = self._beacon
        if beacon is None:
            super().on_message_complete()
            return
        self._beacon = None
        if beacon.answered:
            return
        self._end_body(beacon)
        body = b"".join(beacon.chunks)
        ingest = beacon.ingest
        try:
            parsed = ingest.parse(body)
            if isinstance(parsed, tuple):
                self._answer(beacon, parsed)
                return
            origins = ingest.cached_origins(parsed.site)
            if isinstance(origins, Stale):
                self._hand_to_asgi(beacon, body)
                return
            answer = ingest.accept(parsed, origins, beacon.headers, beacon.received_at)
        except Exception:
            self._failed(beacon)
            return
        self._answer(beacon, answer)

    def shutdown(self) -> None:
        beacon = self._beacon
        if beacon is not None and not beacon.answered:
            beacon.keep_alive = False  # answered, then closed, within the body's deadline
            return
        super().shutdown()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._reading_paused_for_writes:
            self._reading_paused_for_writes = False
            self.flow.resume_reading()

    def _fast_ingest(self) -> BeaconIngest | None:
        """The collector's ingest if this request is a beacon it can answer from the
        parser's callbacks, else None (uvicorn's ASGI path)."""
        ingest: BeaconIngest | None = getattr(self.app, "ingest", None)
        if (ingest is None or self.url != b"/beacon" or self.parser.get_method() != b"POST"
                or self.transport.is_closing() or self.expect_100_continue
                or self.parser.should_upgrade()
                # pipelined behind a request still being answered: answers keep their order
                or (self.cycle is not None and not self.cycle.response_complete)
                or (self.limit_concurrency is not None
                    and (len(self.connections) >= self.limit_concurrency
                         or len(self.tasks) >= self.limit_concurrency))):
            return None
        return ingest

    def _answer(self, beacon: FastBeacon, answer: Answer) -> None:
        """Write the answer as uvicorn's ASGI path frames it."""
        beacon.answered = True
        if self.transport.is_closing():
            return
        status, extra, body = answer
        closes = (b"connection", b"close") in extra
        keep_alive = beacon.keep_alive and not closes
        content = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers,
                            *answer_headers(beacon.headers, extra, body)):
            content += [name, b": ", value, b"\r\n"]
        if not keep_alive and not closes:
            content.append(b"connection: close\r\n")
        content += [b"\r\n", body]
        self.transport.write(b"".join(content))
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()
        if self.flow.write_paused and not self.transport.is_closing():
            # A client that does not read its answers gets no more of them for now.
            self.flow.pause_reading()
            self._reading_paused_for_writes = True

    def _hand_to_asgi(self, beacon: FastBeacon, body: bytes) -> None:
        """Answer through the ASGI route (which awaits what this path cannot), with
        the checks done here not done again."""
        scope = self.scope
        scope.update(method="POST", path="/beacon", raw_path=b"/beacon", query_string=b"",
                     http_version=self.parser.get_http_version())
        scope[RECEIVED_AT] = beacon.received_at  # type: ignore[literal-required]
        cycle = self.cycle = RequestResponseCycle(
            scope=scope, transport=self.transport, flow=self.flow, logger=self.logger,
            access_logger=self.access_logger, access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(), expect_100_continue=False,
            keep_alive=beacon.keep_alive, on_response=self.on_response_complete,
        )
        cycle.body = body
        cycle.more_body = False
        cycle.message_event.set()  # the body is all here: receive() must not wait for it
        self._start_asgi_task(cycle, self.app)

    def _failed(self, beacon: FastBeacon) -> None:
        log.exception("POST /beacon failed")
        self._end_body(beacon)
        self._answer(beacon, _INTERNAL_ERROR)

    def _end_body(self, beacon: FastBeacon) -> None:
        self._body_deadlines(beacon.ingest).finish(self)

    def _body_deadlines(self, ingest: BeaconIngest) -> DeadlineSweep[GuardedHttpToolsProtocol]:
        return _deadlines(self.loop, ingest.body_timeout_seconds,
                          GuardedHttpToolsProtocol._body_too_slow)

    def _body_too_slow(self) -> None:
        beacon = self._beacon
        if beacon is not None and not beacon.answered and not self.transport.is_closing():
            self._answer(beacon, beacon.ingest.body_timeout())

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        # Over limit_concurrency, uvicorn answers a bare 503; the contract's 503
        # is JSON with Retry-After.
        if app is service_unavailable:
            app = _overloaded
        super()._start_asgi_task(cycle, app)

    def send_400_response(self, msg: str) -> None:
        # The parser reports a callback's exception as an invalid request.
        if self._headers_too_large:
            self._answer_and_close(b"431 Request Header Fields Too Large", "headers_too_large",
                                   f"request line and headers over {self.max_header_bytes} bytes")
        else:
            super().send_400_response(msg)

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._headers_too_large = True
            raise HeadersTooLarge

    def _arm_header_deadline(self) -> None:
        self._header_deadlines.start(self)
        self._header_deadline_armed = True

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline_armed:
            self._header_deadlines.finish(self)
            self._header_deadline_armed = False

    def _headers_too_slow(self) -> None:
        self._header_deadline_armed = False
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A request is being answered (its body has the route's deadline); the
            # next one, pipelined behind it, gets a deadline of its own.
            self._arm_header_deadline()
            return
        self._answer_and_close(b"408 Request Timeout", "header_timeout",
                               f"the request's headers took over {self.header_timeout:g} s")

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # answered already: what the client still sends is dropped
        super().data_received(data)

    def _answer_and_close(self, status: bytes, code: str, detail: str) -> None:
        body = orjson.dumps({"error": code, "detail": detail})
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        # A lingering close: closing a socket with unread input sends a reset that
        # can destroy the answer before the client reads it, so send the answer and
        # our end of the stream, then drop input for a moment before closing.
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


# One sweep per event loop and kind of deadline (the headers of every
# connection; the bodies of the beacons answered from the parser's callbacks):
# collector/deadlines.py, as a timer per request costs 4 µs here.
_DEADLINES: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop,
    dict[Callable[[GuardedHttpToolsProtocol], None], DeadlineSweep[GuardedHttpToolsProtocol]],
] = weakref.WeakKeyDictionary()


def _deadlines(loop: asyncio.AbstractEventLoop, seconds: float,
               expire: Callable[[GuardedHttpToolsProtocol], None],
               ) -> DeadlineSweep[GuardedHttpToolsProtocol]:
    sweeps = _DEADLINES.setdefault(loop, {})
    sweep = sweeps.get(expire)
    if sweep is None or sweep.seconds != seconds:
        sweep = sweeps[expire] = DeadlineSweep(seconds, expire)
    return sweep


async def _overloaded(scope: Any, receive: Any, send: Any) -> None:
    body = orjson.dumps({"error": "overloaded", "detail": "too many connections; retry later"})
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"5"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run, every limit in one place."""
    return {
        "http": GuardedHttpToolsProtocol,
        "log_level": "warning",
        "access_log": False,  # an access log would write every client's address
        "server_header": False,
        "proxy_headers": False,  # the client address is only used, hashed, for the rate limit
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "limit_concurrency": settings.max_connections,
        "backlog": BACKLOG,
        "timeout_graceful_shutdown": 10,
    }
