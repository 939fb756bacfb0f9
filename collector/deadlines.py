"""Deadlines for many requests at once, with one timer for all of them.

Arming and cancelling a timer per request (`asyncio.timeout`, `loop.call_later`)
costs 4 to 11 µs a beacon here (docs/performance.md), and every page view of
every visitor pays it, twice: once for its headers (collector/server.py), once
for its body (collector/ingest.py). A DeadlineSweep keeps the deadlines in a
dict instead (a fraction of a microsecond) and checks them every TICK_S: a
deadline fires up to TICK_S late, which for deadlines of seconds against slow
or stalled clients changes nothing. The sweep runs only while something is
registered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class DeadlineSweep(Generic[K]):
    TICK_S = 0.25

    def __init__(self, seconds: float, expire: Callable[[K], None]) -> None:
        self.seconds = seconds
        self._expire = expire
        self._deadlines: dict[K, float] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def start(self, key: K) -> None:
        """Call expire(key) once `seconds` from now, unless finish(key) comes first."""
        self._deadlines[key] = time.monotonic() + self.seconds
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def finish(self, key: K) -> None:
        self._deadlines.pop(key, None)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._deadlines.clear()

    async def _sweep(self) -> None:
        try:
            while self._deadlines:
                await asyncio.sleep(self.TICK_S)
                now = time.monotonic()
                late = [key for key, deadline in self._deadlines.items() if deadline <= now]
                for key in late:
                    del self._deadlines[key]
                    self._expire(key)
        finally:
            if self._sweeper is asyncio.current_task():
                self._sweeper = None
