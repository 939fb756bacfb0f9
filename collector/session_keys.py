"""The keys of the session pseudonyms (issue 20; docs/privacy.md, "Identifiers").

A page view's stored `sid` is HMAC-SHA256 of its site, its UTC day and the
tab's session id under the key of that day (collector/enrich.py): without the
key, knowing a session id (any script on the page can read it) does not give
the stored value. One random 32-byte key per UTC day, shared by every collector
process of one database through binome.session_key()
(sql/functions/60_session_keys.sql), which keeps the first key proposed for a
day. `binome maintain` deletes a day's key once the next UTC day is over
(binome.forget_session_keys()), and the collector forgets it from memory then:
after that nobody, the operator included, can link a session id to stored rows.

The beacon's hot path never waits for PostgreSQL: `key(day)` answers from
memory. A background loop fetches yesterday's, today's and tomorrow's keys (so
midnight finds the next key ready) every SHARE_SECONDS. When a day's key is
needed before PostgreSQL could give it (PostgreSQL unreachable), the process
draws a random key of its own for that day and uses it at once; the loop then
proposes it, and adopts the stored key if another process's proposal came
first. Beacons are never held back and no session id ever leaves the process:
the cost of an outage is that one session may get two pseudonyms that day
(counted as two sessions). A beacon of a day before yesterday (its t0 up to two
days old, collector/row.py) is pseudonymised with a key that is never stored
and is forgotten within SHARE_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from typing import Any, Protocol

log = logging.getLogger(__name__)

KEY_BYTES = 32
SHARE_SECONDS = 60.0
# While a key is still local only (PostgreSQL unreachable), try again sooner.
RETRY_SECONDS = 5.0
# How long start-up waits for the keys before serving with local ones.
START_TIMEOUT_SECONDS = 5.0


class _Database(Protocol):
    async def fetchval(self, query: str, *args: Any) -> Any: ...


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class SessionKeys:
    """The day keys of one collector process; `database` (a pool) shares them.
    Without one, every key is local to the process (tests, benches)."""

    def __init__(self, database: _Database | None = None) -> None:
        self._database = database
        self._keys: dict[dt.date, bytes] = {}
        self._shared: set[dt.date] = set()
        self._task: asyncio.Task[None] | None = None

    def key(self, day: dt.date) -> bytes:
        """The key of `day`, from memory; a new random one if the day has none yet."""
        key = self._keys.get(day)
        if key is None:
            key = self._keys[day] = secrets.token_bytes(KEY_BYTES)
        return key

    @property
    def all_shared(self) -> bool:
        return self._shared.issuperset(self._keys)

    async def share(self, today: dt.date | None = None) -> None:
        """Forget the keys of days before yesterday; get or propose the keys of
        yesterday, today and tomorrow, adopting the stored ones."""
        today = today or utc_today()
        for day in [day for day in self._keys if day < today - dt.timedelta(days=1)]:
            del self._keys[day]
            self._shared.discard(day)
        if self._database is None:
            return
        for offset in (-1, 0, 1):
            day = today + dt.timedelta(days=offset)
            if day in self._shared:
                continue
            stored = await self._database.fetchval(
                "SELECT binome.session_key($1, $2)", day, self.key(day))
            if stored is not None:  # None: a day PostgreSQL's clock says is out of range
                self._keys[day] = bytes(stored)
                self._shared.add(day)

    async def start(self) -> None:
        """Share the keys once (waiting START_TIMEOUT_SECONDS at most), then keep
        sharing them in the background until stop()."""
        await self._share_logged(timeout=START_TIMEOUT_SECONDS)
        self._task = asyncio.create_task(self._run(), name="binome-session-keys")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SHARE_SECONDS if self.all_shared else RETRY_SECONDS)
            await self._share_logged(timeout=SHARE_SECONDS)

    async def _share_logged(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.share(), timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # PostgreSQL unreachable: local keys until it is back
            log.warning("session keys not shared; local keys meanwhile",
                        extra={"error": type(exc).__name__})
