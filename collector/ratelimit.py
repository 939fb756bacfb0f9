"""Per-client rate limit (BINOME_RATE_LIMIT_PER_MINUTE), a token bucket per client.

A client is known only by a salted hash of its address, held in memory while it
is active: the address itself is never kept, logged or stored, and the salt
changes at every start so the hashes cannot be linked across restarts.
A bucket (not a fixed window) so a burst at a minute's edge cannot double the rate.

An IPv6 client is keyed by its /64: one host is routinely given a whole /64
(RFC 6177), so rotating addresses inside it must not buy new buckets (issue 20).
The buckets are bounded (MAX_CLIENTS) and kept in order of
last use, so forgetting idle ones pops a few from the front on each call: no
sweep of the whole table ever holds the event loop.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections import OrderedDict

# Clients remembered at once: about 20 MB; beyond it the least recently seen is
# forgotten (it starts again with a full bucket), so a flood of distinct addresses
# cannot grow memory.
MAX_CLIENTS = 100_000
# Idle buckets forgotten per call at most: bounded work per beacon, yet faster than
# any flood can add them (one new bucket per call).
PURGE_SLICE = 4


def client_key(address: str) -> str:
    """What identifies one client: an IPv4 address, or an IPv6 /64 (an IPv4-mapped
    IPv6 address is its IPv4 one); anything unparsable as it is."""
    if ":" not in address:
        return address  # IPv4 as uvicorn and proxies.py give it, or junk
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class RateLimiter:
    def __init__(self, per_minute: int, max_clients: int = MAX_CLIENTS) -> None:
        self._capacity = float(per_minute)
        self._refill_per_second = per_minute / 60.0
        self._max_clients = max(1, max_clients)
        self._salt = os.urandom(16)
        # key -> (tokens, last use), least recently used first.
        self._buckets: OrderedDict[int, tuple[float, float]] = OrderedDict()

    def allow(self, client_address: str) -> bool:
        if self._capacity <= 0:
            return True
        now = time.monotonic()
        self._purge(now)
        # SipHash keyed per process (Python's str hash) plus the salt: as unlinkable
        # as a blake2b digest here, at a tenth of the cost on every beacon.
        key = hash((self._salt, client_key(client_address)))
        tokens, last = self._buckets.pop(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._refill_per_second)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self._max_clients:
            # Full: the least recently used client starts again with a full bucket.
            self._buckets.popitem(last=False)
        return allowed

    def _purge(self, now: float) -> int:
        """Forget up to PURGE_SLICE idle buckets, oldest first; returns how many.
        A bucket idle for a minute is full again: forgetting it changes nothing."""
        idle_after = self._capacity / self._refill_per_second
        forgotten = 0
        while forgotten < PURGE_SLICE and self._buckets:
            _, (_, last) = next(iter(self._buckets.items()))
            if now - last < idle_after:
                break
            self._buckets.popitem(last=False)
            forgotten += 1
        return forgotten
