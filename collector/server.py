"""The HTTP server's limits: what `binome serve` hands uvicorn (SECURITY.md).

uvicorn bounds idle keep-alive connections, concurrency and the accept backlog,
but not the time a new connection may take to send its request line and
headers, nor their size: a client sending one header byte every few seconds
(slowloris) would hold its connection, and count against the concurrency
limit, forever. GuardedHttpToolsProtocol adds both limits to uvicorn's
httptools protocol. The body has its own deadline in the route
(collector/ingest.py), where the size cap is also enforced.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import orjson
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from collector.deadlines import DeadlineSweep
from collector.settings import Settings, get_settings

# Request line plus headers. Browsers send 1-2 KiB to a collector on another
# origin; cookies of a parent domain can add a few KiB. h11's default is 16 KiB,
# nginx's 4 x 8 KiB.
MAX_HEADER_BYTES = 32 * 1024
KEEP_ALIVE_SECONDS = 5
BACKLOG = 2048
LINGER_SECONDS = 1.0


class HeadersTooLarge(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size cap on headers."""

    max_header_bytes = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read here, not passed in: `--workers N` starts fresh processes that
        # only share the environment.
        self.header_timeout = get_settings().header_timeout_seconds
        self._header_deadlines = _header_deadlines(self.loop, self.header_timeout)
        self._header_deadline_armed = False
        self._header_bytes = 0
        self._headers_too_large = False
        self._lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
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
        super().on_headers_complete()

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


# One sweep per event loop for the header deadlines of all its connections
# (collector/deadlines.py: a timer per request costs 4 µs here).
_HEADER_DEADLINES: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, DeadlineSweep[GuardedHttpToolsProtocol]
] = weakref.WeakKeyDictionary()


def _header_deadlines(loop: asyncio.AbstractEventLoop,
                      seconds: float) -> DeadlineSweep[GuardedHttpToolsProtocol]:
    sweep = _HEADER_DEADLINES.get(loop)
    if sweep is None or sweep.seconds != seconds:
        sweep = DeadlineSweep(seconds, GuardedHttpToolsProtocol._headers_too_slow)
        _HEADER_DEADLINES[loop] = sweep
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
