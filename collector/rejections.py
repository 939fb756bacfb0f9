"""Refused beacons, told the way a newcomer setting up a site needs them (issue 24):
a log line naming the reason, the site as sent and the origin, and per-minute
counters the writer adds to binome.ingest_rejections (rum.ingest_rejections).

Both are bounded, since what they hold comes from clients: under attack a
collector must not write a log line per beacon nor a row per junk origin. A
(reason, site, origin) gets at most one log line a minute; the refusals it does
not log are counted and told on its next line, or at the end of the next minute
when none came. At most LOGGED_KEYS_PER_MINUTE keys get lines in a minute; the
others are summed into one line. The counters keep at most KEYS_PER_MINUTE
(site, origin) pairs a minute per process; the others are folded into an
`(other)` row for their reason.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# What the route knows of a refusal's site before it has read one, or of its
# origin when the request had none. Neither can be a site name
# (collector/beacon.py's pattern) nor an origin (scheme://host).
NOT_READ = "(not read)"
NO_ORIGIN = "(none)"
OTHER = "(other)"
# Client input, kept as text: at most this long, printable ASCII only.
MAX_SITE_CHARS = 64
MAX_ORIGIN_CHARS = 100
KEYS_PER_MINUTE = 50
LOGGED_KEYS_PER_MINUTE = 20

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")

Key = tuple[str, str, str]  # reason, site as sent, origin


def bounded(text: str, limit: int) -> str:
    """Client text fit for a log line, a row and an answer: printable ASCII,
    at most `limit` characters (an ellipsis marks a cut)."""
    text = _UNPRINTABLE.sub("?", text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class Rejections:
    """One process's refusals: note() on each, take() by the writer's flush."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[int, str, str, str], int] = {}
        self._pairs: dict[int, set[tuple[str, str]]] = {}
        self._minute = -1
        self._logged: dict[Key, int] = {}  # this minute's logged keys: refusals since
        self._carried: dict[Key, int] = {}  # last minute's refusals not logged yet
        self._unlogged = 0  # refusals of keys past LOGGED_KEYS_PER_MINUTE, this minute

    def note(self, reason: str, site: str | None, origin: str | None) -> None:
        now = self._clock()
        minute = int(now // 60)
        site = bounded(site, MAX_SITE_CHARS) if site else NOT_READ
        origin = bounded(origin, MAX_ORIGIN_CHARS) if origin else NO_ORIGIN
        self._count(minute, reason, site, origin)
        self._log(minute, (reason, site, origin))

    def _count(self, minute: int, reason: str, site: str, origin: str) -> None:
        pairs = self._pairs.setdefault(minute, set())
        if (site, origin) not in pairs:
            if len(pairs) >= KEYS_PER_MINUTE:
                site = origin = OTHER
            else:
                pairs.add((site, origin))
        key = (minute, reason, site, origin)
        self._counts[key] = self._counts.get(key, 0) + 1

    def _log(self, minute: int, key: Key) -> None:
        if minute != self._minute:
            self._roll(minute)
        if key in self._logged:
            self._logged[key] += 1
            return
        if len(self._logged) >= LOGGED_KEYS_PER_MINUTE:
            self._unlogged += 1
            return
        self._logged[key] = 0
        reason, site, origin = key
        log.warning("beacon refused", extra={"reason": reason, "site": site, "origin": origin,
                                             "not_logged_before": self._carried.pop(key, 0)})

    def _roll(self, minute: int) -> None:
        """A new minute: tell what the minute before last left untold, and carry
        the last minute's unlogged refusals to their key's next line."""
        for (reason, site, origin), count in self._carried.items():
            log.warning("beacons refused, not logged one by one",
                        extra={"reason": reason, "site": site, "origin": origin,
                               "refused": count})
        if self._unlogged:
            log.warning("beacons refused, not logged: too many kinds in a minute",
                        extra={"refused": self._unlogged,
                               "logged_kinds_per_minute": LOGGED_KEYS_PER_MINUTE})
        self._carried = {key: count for key, count in self._logged.items() if count}
        self._logged = {}
        self._unlogged = 0
        self._minute = minute

    def take(self) -> list[tuple[int, str, str, str, int]]:
        """The counts so far, (minute, reason, site, origin, refused), and forget them;
        minutes before this one are done (no more pairs to bound)."""
        now_minute = int(self._clock() // 60)
        if now_minute != self._minute and self._minute >= 0:
            self._roll(now_minute)
        taken = [(*key, count) for key, count in self._counts.items()]
        self._counts.clear()
        for minute in [m for m in self._pairs if m < now_minute]:
            del self._pairs[minute]
        return taken

    def put_back(self, taken: list[tuple[int, str, str, str, int]]) -> None:
        for minute, reason, site, origin, count in taken:
            key = (minute, reason, site, origin)
            self._counts[key] = self._counts.get(key, 0) + count

    def clear(self) -> None:
        self._counts.clear()
        self._pairs.clear()


# One per process, as telemetry.INGEST_COUNTS: the route notes, the writer flushes.
REJECTIONS = Rejections()
