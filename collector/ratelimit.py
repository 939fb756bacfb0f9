"""Per-client rate limit (BINOME_RATE_LIMIT_PER_MINUTE), a token bucket per client.

A client is known only by a salted hash of its address, held in memory while it
is active: the address itself is never kept, logged or stored, and the salt
changes at every start so the hashes cannot be linked across restarts.
A bucket (not a fixed window) so a burst at a minute's edge cannot double the rate.
"""

from __future__ import annotations

import os
import time

_PURGE_EVERY = 60.0


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self._capacity = float(per_minute)
        self._refill_per_second = per_minute / 60.0
        self._salt = os.urandom(16)
        self._buckets: dict[int, tuple[float, float]] = {}
        self._purged_at = time.monotonic()

    def allow(self, client_address: str) -> bool:
        if self._capacity <= 0:
            return True
        now = time.monotonic()
        if now - self._purged_at > _PURGE_EVERY:
            self._purge(now)
        # SipHash keyed per process (Python's str hash) plus the salt: as unlinkable
        # as a blake2b digest here, at a tenth of the cost on every beacon.
        key = hash((self._salt, client_address))
        tokens, last = self._buckets.get(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._refill_per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True

    def _purge(self, now: float) -> None:
        # A bucket idle for a minute is full again: forgetting it changes nothing.
        idle_after = self._capacity / self._refill_per_second
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < idle_after}
        self._purged_at = now
