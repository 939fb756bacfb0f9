"""Registered sites and the origins each accepts, cached in memory.

The cache is re-read every `sites_refresh_seconds`, and at once (at most once a
second) when a beacon names a site it does not know, so `binome site add` takes
effect on a running collector without a restart, while junk site names cannot
turn into a query per request.
"""

from __future__ import annotations

import logging
import time
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


class SiteRegistry:
    def __init__(self, pool: asyncpg.Pool, refresh_seconds: float) -> None:
        self._pool = pool
        self._refresh_seconds = refresh_seconds
        self._sites: dict[str, frozenset[str]] = {}
        self._loaded_at = 0.0
        self._failing = False

    async def refresh(self) -> None:
        async with self._pool.acquire(timeout=_REFRESH_TIMEOUT) as conn:
            self._sites = await db.load_sites(conn)
        self._loaded_at = time.monotonic()

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
