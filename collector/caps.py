"""Caps on beacons per page view and per session (BINOME_MAX_BEACONS_PER_*).

The snippet sends a handful of beacons per page view (one each time the page is
hidden) and a session is a tab's page views, so a page view or session that
sends hundreds is a loop or someone replaying ids to inflate the figures. The
rate limit cannot see it when the sender spreads over many addresses.

Counts live in memory, per process: with `--workers N` or several collectors
behind a load balancer, each process counts what it sees, so the effective cap
is up to N times the setting (the `seq` check below holds everywhere). Memory
is bounded: at most `tracked` page views and `tracked` sessions are counted,
least recently seen forgotten first; ids are kept as 64-bit keyed hashes
(SipHash, Python's own str hash, with a random key per process), never as sent.
"""

from __future__ import annotations

import os
from collections import OrderedDict

DEFAULT_TRACKED = 100_000  # ~ 10 MB per table at most


class _BoundedCounter:
    def __init__(self, limit: int, tracked: int, salt: bytes) -> None:
        self.limit = limit
        self._tracked = tracked
        self._salt = salt
        self._counts: OrderedDict[int, int] = OrderedDict()

    def _key(self, site: str, ident: str) -> int:
        # hash() of a tuple of str is SipHash keyed per process (hash
        # randomisation); the salt keeps it keyed under a fixed PYTHONHASHSEED.
        # A blake2b digest here cost more than the rest of the check.
        return hash((self._salt, site, ident))

    def full(self, site: str, ident: str) -> bool:
        return self._counts.get(self._key(site, ident), 0) >= self.limit

    def add(self, site: str, ident: str) -> None:
        key = self._key(site, ident)
        counts = self._counts
        counts[key] = counts.pop(key, 0) + 1  # re-inserted: most recently seen last
        if len(counts) > self._tracked:
            counts.popitem(last=False)

    def __len__(self) -> int:
        return len(self._counts)


class BeaconCaps:
    def __init__(self, per_page_view: int, per_session: int,
                 tracked: int = DEFAULT_TRACKED) -> None:
        salt = os.urandom(16)
        self._page_views = _BoundedCounter(per_page_view, tracked, salt) if per_page_view else None
        self._sessions = _BoundedCounter(per_session, tracked, salt) if per_session else None

    def refusal(self, site: str, pv: str, sid: str | None, seq: int) -> str | None:
        """The error code when this beacon is over a cap, else None (nothing counted yet)."""
        page_views = self._page_views
        if page_views is not None and (seq >= page_views.limit or page_views.full(site, pv)):
            return "page_view_cap"
        if self._sessions is not None and self._sessions.full(site, sid or pv):
            return "session_cap"
        return None

    def count(self, site: str, pv: str, sid: str | None) -> None:
        """Count one accepted beacon."""
        if self._page_views is not None:
            self._page_views.add(site, pv)
        if self._sessions is not None:
            self._sessions.add(site, sid or pv)
