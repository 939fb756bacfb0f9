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
import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from collector import db
from collector.maintenance import MAINTENANCE_LOCK

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


# Sums kept by statement triggers over other tables (sql/functions/45_rollup_sums.sql),
# the rollup bookkeeping those triggers read, then the registry itself: removed
# after the tables they follow.
_REMOVED_LAST = ("release_bins", "site_days", "rollup_state", "sites")


async def site_tables(conn: asyncpg.Connection) -> list[str]:
    """Every table of schema binome with a `site` column (partitioned ones as a
    whole), in the order removing a site deletes from them: what holds a site's
    data, whichever migration added it."""
    names = await conn.fetch("""
        SELECT c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'site' AND NOT a.attisdropped
        WHERE n.nspname = 'binome' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY c.relname""")
    tables = [r["relname"] for r in names]
    return sorted(tables, key=lambda t: _REMOVED_LAST.index(t) + 1 if t in _REMOVED_LAST else 0)


@dataclass(frozen=True)
class SiteData:
    """What `binome site remove` would delete beyond the registration."""

    tables: list[str]  # the tables that hold rows of the site
    page_views: int
    first_day: dt.date | None
    last_day: dt.date | None
    objectives: int


async def site_data(conn: asyncpg.Connection, site: str) -> SiteData | None:
    """None for a site that is not registered."""
    if not await conn.fetchval("SELECT true FROM binome.sites WHERE site = $1", site):
        return None
    tables = [t for t in await site_tables(conn) if t not in ("sites", "site_origins")
              and await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM binome."{t}" WHERE site = $1)',
                                      site)]
    views = await conn.fetchrow("SELECT count(*), min(day), max(day) FROM binome.page_views"
                                " WHERE site = $1", site)
    objectives = await conn.fetchval("SELECT count(*) FROM binome.objectives WHERE site = $1",
                                     site)
    return SiteData(tables, views[0], views[1], views[2], objectives)


async def remove_site(conn: asyncpg.Connection, site: str) -> dict[str, int]:
    """Delete the site and every row of it (beacons, page views, rollups, comparison
    days, objectives, ingest counts ...) in one transaction; the rows deleted per
    table. Collectors refuse its beacons once they re-read the registry
    (BINOME_SITES_REFRESH_SECONDS): a beacon they accept meanwhile is stored
    again, so a site's snippet goes first."""
    deleted: dict[str, int] = {}
    # Not while a maintenance run rolls the site's days up.
    await conn.execute("SELECT pg_advisory_lock($1)", MAINTENANCE_LOCK)
    try:
        async with conn.transaction():
            for table in await site_tables(conn):
                status = await conn.execute(f'DELETE FROM binome."{table}" WHERE site = $1', site)
                deleted[table] = int(status.rsplit(" ", 1)[1])
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MAINTENANCE_LOCK)
    return deleted
