"""Per-client rate limit (BINOME_RATE_LIMIT_PER_MINUTE).

A client is known only by a salted hash of its address, held in memory for the
current minute: the address itself is never kept, logged or stored, and the
salt changes at every start so the hashes cannot be linked across restarts.
"""

from __future__ import annotations

import hashlib
import os
import time


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._salt = os.urandom(16)
        self._minute = 0
        self._counts: dict[bytes, int] = {}

    def allow(self, client_address: str) -> bool:
        if self._per_minute <= 0:
            return True
        minute = int(time.time() // 60)
        if minute != self._minute:
            # A fixed window: simple, O(1), and forgets every client each minute.
            self._minute = minute
            self._counts = {}
        key = hashlib.blake2b(client_address.encode(), key=self._salt, digest_size=12).digest()
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count <= self._per_minute
