"""Registered sites and the origins each accepts, cached in memory.

The cache is re-read every `sites_refresh_seconds`, and at once (at most once a
second) when a beacon names a site it does not know, so `binome site add` takes
effect on a running collector without a restart, while junk site names cannot
turn into a query per request.

Each registry read from PostgreSQL is also kept on disk (sites.json in the
spool's directory, one per database as the spool): a collector started while
PostgreSQL is down reads it, so beacons for the sites it knew are accepted and
spooled (issue 20). A site it does not know then may exist: `unavailable` says
so, and the route answers 503, not 403.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from collector import db

log = logging.getLogger(__name__)

_MISS_REFRESH_INTERVAL = 1.0
_REFRESH_TIMEOUT = 2.0


def normalize_origin(value: str) -> str:
    """`https://Shop.Example:443/` -> `https://shop.example` (what browsers send as Origin)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an origin (scheme://host[:port]): {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an origin has no path, query or user: {value!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


def origin_of(url: str) -> str | None:
    try:
        return normalize_origin(urlsplit(url)._replace(path="", query="", fragment="").geturl())
    except ValueError:
        return None


CACHE_NAME = "sites.json"


class SiteRegistry:
    def __init__(self, pool: asyncpg.Pool, refresh_seconds: float,
                 cache: Path | None = None) -> None:
        self._pool = pool
        self._refresh_seconds = refresh_seconds
        self._cache = cache
        self._sites: dict[str, frozenset[str]] = {}
        self._cached: dict[str, frozenset[str]] | None = None  # what the cache file holds
        self._loaded_at = 0.0
        self._failing = False

    async def start(self) -> None:
        """Read the registry from PostgreSQL or, while it is unreachable, from the
        cache on disk (nothing there: no site known until PostgreSQL answers)."""
        try:
            await self.refresh()
        except Exception as exc:
            if not db.unreachable(exc):
                raise
            self._sites = await asyncio.to_thread(self._read_cache)
            self._cached = dict(self._sites)
            self._loaded_at = time.monotonic()
            self._failing = True
            log.warning("PostgreSQL unreachable at start: sites read from the cache on disk",
                        extra={"error": f"{type(exc).__name__}: {exc}",
                               "sites": len(self._sites), "cache": str(self._cache)})

    async def refresh(self) -> None:
        async with self._pool.acquire(timeout=_REFRESH_TIMEOUT) as conn:
            self._sites = await db.load_sites(conn)
        self._loaded_at = time.monotonic()
        if self._cache is not None and self._sites != self._cached:
            await asyncio.to_thread(self._write_cache, self._sites)
            self._cached = dict(self._sites)

    @property
    def unavailable(self) -> bool:
        """True while PostgreSQL cannot be asked: an unknown site may exist."""
        return self._failing

    def _read_cache(self) -> dict[str, frozenset[str]]:
        if self._cache is None:
            return {}
        try:
            sites = json.loads(self._cache.read_text())
            return {str(site): frozenset(map(str, origins)) for site, origins in sites.items()}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning("site cache unreadable: no site known until PostgreSQL answers",
                        extra={"error": f"{type(exc).__name__}: {exc}", "cache": str(self._cache)})
            return {}

    def _write_cache(self, sites: dict[str, frozenset[str]]) -> None:
        assert self._cache is not None
        try:
            self._cache.parent.mkdir(parents=True, exist_ok=True)
            # Written aside, then renamed: a crash leaves the old file or the new one.
            temporary = self._cache.with_name(f"{self._cache.name}.{os.getpid()}.new")
            temporary.write_text(json.dumps({site: sorted(origins)
                                             for site, origins in sorted(sites.items())}))
            temporary.replace(self._cache)
        except OSError as exc:  # the cache only helps a start without PostgreSQL
            log.warning("site cache not written", extra={"error": str(exc),
                                                         "cache": str(self._cache)})

    async def _refresh_or_keep(self) -> None:
        """Refresh, or keep the sites known so far while PostgreSQL is unreachable:
        beacons for them keep flowing (to the spool) instead of failing."""
        try:
            await self.refresh()
        except Exception as exc:
            self._loaded_at = time.monotonic()  # next try after the usual interval
            if not self._failing:
                log.warning("site registry refresh failed, keeping the sites known so far",
                            extra={"error": f"{type(exc).__name__}: {exc}",
                                   "sites": len(self._sites)})
            self._failing = True
            return
        if self._failing:
            log.info("site registry refreshed again", extra={"sites": len(self._sites)})
        self._failing = False

    async def origins(self, site: str) -> frozenset[str] | None:
        """The site's allowed origins (empty = any), or None for an unknown site."""
        origins = self._sites.get(site)
        age = time.monotonic() - self._loaded_at
        if age > self._refresh_seconds or (origins is None and age > _MISS_REFRESH_INTERVAL):
            await self._refresh_or_keep()
            origins = self._sites.get(site)
        return origins

    def known(self, site: str) -> bool:
        return site in self._sites
