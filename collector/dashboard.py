"""GET /dashboard/data: the figures of the shared scorecard page, as JSON.

The page itself (dashboard/index.html and its bundle in dashboard/dist/) is
static; it asks this module for one site, one period and optionally one device
class and one country. Everything here is read through the `rum` views only.

Figures over a period are computed over the period's page views, not from the
daily rows of rum.scorecard_daily: a p75 over 28 days is not any mean of 28
daily p75s, and a session seen on two days is one session. So the period's
page views are read once from rum.page_views_enriched joined to rum.sessions
(for the landing page view's channel and campaign, and whether the session
converted), with every definition exactly as rum.scorecard_daily's; the
release comparison and "what speed costs" are the rows of
rum.release_comparison and rum.perf_vs_conversion as they are.

Cost (bench/dashboard.py, 30 days of one million page views, 2 cores): about
45 s while the views fold raw beacons, about 12 s for the same rows in plain
tables; exact p75s and distinct sessions over a million rows cannot take under
a second. That needs the period's figures re-aggregated from daily rollups with
mergeable histograms (issue 4); until then repeated views of the same filters
are served from ScorecardCache.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from collector.report import THRESHOLDS

# Figures are at most this old: viewers of the same filters within it share
# one computation (a wall screen, a reload, a meeting where everyone opens the
# link), which matters while the views read raw beacons.
CACHE_SECONDS = 30.0
# The pool's statement_timeout (30 s) guards beacon writes; the scorecard may
# take longer while the views read raw beacons (bench/dashboard.py), and an
# answer late is better than none. Longer than this, the endpoint answers 503.
STATEMENT_TIMEOUT = "120s"
MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 28
TOO_SMALL_PAGE_VIEWS = 50  # as rum.scorecard_daily's too_small


class FilterError(ValueError):
    """A query parameter the data endpoint cannot use (answered with 400)."""


@dataclass(frozen=True)
class Filters:
    site: str | None
    first_day: dt.date
    last_day: dt.date
    device_class: str | None = None
    country: str | None = None

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def previous_first_day(self) -> dt.date:
        """The previous period has the same length and ends the day before this one."""
        return self.first_day - dt.timedelta(days=self.days)


def parse_filters(params: Mapping[str, str], today: dt.date) -> Filters:
    """?site=&from=&to=&device_class=&country=; days are UTC days, both ends included."""

    def day(name: str) -> dt.date | None:
        value = params.get(name) or None
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise FilterError(f"{name}: expected a date YYYY-MM-DD, got {value[:40]!r}") from None

    last_day = day("to") or today
    first_day = day("from") or last_day - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if first_day > last_day:
        raise FilterError("from: after to")
    if (last_day - first_day).days >= MAX_PERIOD_DAYS:
        raise FilterError(f"from: periods are at most {MAX_PERIOD_DAYS} days")
    return Filters(
        site=params.get("site") or None,
        first_day=first_day,
        last_day=last_day,
        device_class=params.get("device_class") or None,
        country=params.get("country") or None,
    )


def _share(metric: str, column: str) -> str:
    good, poor = THRESHOLDS[metric]
    return (f"100.0 * count(*) FILTER (WHERE {column} <= {good}) / nullif(count({column}), 0)"
            f" AS {metric}_good_pct,\n"
            f"    100.0 * count(*) FILTER (WHERE {column} > {poor}) / nullif(count({column}), 0)"
            f" AS {metric}_poor_pct")


# The figures of one group of page views, defined as in rum.scorecard_daily
# (CrUX's definitions; thresholds from collector/report.py). poor: above the
# "needs improvement" band; the page derives that band as 100 - good - poor.
_FIGURES = f"""
    count(*) AS page_views,
    count(*) FILTER (WHERE consent = 'marketing') AS marketing_page_views,
    count(DISTINCT sid) AS sessions,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY lcp) AS lcp_p75,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY inp) AS inp_p75,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY cls) AS cls_p75,
    count(lcp) AS lcp_samples,
    count(inp) AS inp_samples,
    count(cls) AS cls_samples,
    {_share("lcp", "lcp")},
    {_share("inp", "inp")},
    {_share("cls", "cls")},
    100.0 * count(*) FILTER (WHERE lcp <= 2500 AND cls <= 0.1 AND (inp IS NULL OR inp <= 200))
        / nullif(count(*) FILTER (WHERE lcp IS NOT NULL AND cls IS NOT NULL), 0) AS cwv_good_pct,
    100.0 * count(DISTINCT sid) FILTER (WHERE consent = 'marketing' AND session_converted)
        / nullif(count(DISTINCT sid) FILTER (WHERE consent = 'marketing'), 0) AS conversion_rate,
    sum(revenue) FILTER (WHERE consent = 'marketing') AS revenue"""

# $1 site, $2 first day of the previous period, $3 first day, $4 last day,
# $5 device class, $6 country (NULL: all).
_PERIOD_QUERY = f"""
WITH page_views AS MATERIALIZED (
    SELECT p.day, p.day >= $3 AS in_period, p.sid, p.consent, p.lcp, p.inp, p.cls, p.revenue,
           coalesce(p.device_class, '(none)') AS device_class,
           coalesce(p.country, '(none)') AS country,
           CASE WHEN p.consent = 'marketing' THEN s.channel ELSE '(no consent)' END AS channel,
           CASE WHEN p.consent = 'marketing' THEN s.utm_campaign ELSE '(no consent)' END
               AS utm_campaign,
           s.converted AS session_converted
    FROM rum.page_views_enriched p
    JOIN rum.sessions s USING (site, sid)
    WHERE p.site = $1 AND p.day BETWEEN $2 AND $4
),
chosen AS MATERIALIZED (
    SELECT * FROM page_views
    WHERE ($5::text IS NULL OR device_class = $5) AND ($6::text IS NULL OR country = $6)
)
SELECT json_build_object(
    'current', (SELECT row_to_json(f) FROM (
        SELECT {_FIGURES} FROM chosen WHERE in_period) f),
    'previous', (SELECT row_to_json(f) FROM (
        SELECT {_FIGURES} FROM chosen WHERE NOT in_period) f),
    'trend', (SELECT coalesce(json_agg(f ORDER BY f.day), '[]') FROM (
        SELECT day, {_FIGURES} FROM chosen WHERE in_period GROUP BY day) f),
    'campaigns', (SELECT coalesce(json_agg(f ORDER BY f.page_views DESC, f.channel,
                                           f.utm_campaign), '[]') FROM (
        SELECT channel, utm_campaign, {_FIGURES},
               count(*) < {TOO_SMALL_PAGE_VIEWS} AS too_small
        FROM chosen WHERE in_period GROUP BY channel, utm_campaign) f),
    'device_classes', (SELECT coalesce(json_agg(device_class ORDER BY n DESC, device_class), '[]')
        FROM (SELECT device_class, count(*) AS n FROM page_views WHERE in_period
              GROUP BY device_class) d),
    'countries', (SELECT coalesce(json_agg(country ORDER BY n DESC, country), '[]')
        FROM (SELECT country, count(*) AS n FROM page_views WHERE in_period
              GROUP BY country) c)
)::text
"""

# Releases seen during the period, each beside the one before it (by
# first_seen); release changes mark the trend charts. Page views without a
# release ('(none)') are no release.
_RELEASES_QUERY = """
SELECT * FROM (
    SELECT release, first_seen, last_seen, page_views, lcp_p75, inp_p75, cls_p75,
           cwv_good_pct, conversion_rate, too_small,
           lag(release) OVER w AS previous_release,
           lag(page_views) OVER w AS previous_page_views,
           lag(lcp_p75) OVER w AS previous_lcp_p75,
           lag(inp_p75) OVER w AS previous_inp_p75,
           lag(cls_p75) OVER w AS previous_cls_p75,
           lag(cwv_good_pct) OVER w AS previous_cwv_good_pct,
           lag(conversion_rate) OVER w AS previous_conversion_rate
    FROM rum.release_comparison
    WHERE site = $1 AND release <> '(none)'
    WINDOW w AS (ORDER BY first_seen, release)
) r
WHERE last_seen >= $2::date AND first_seen < $3::date + 1
ORDER BY first_seen DESC, release DESC
"""

_SPEED_QUERY = """
SELECT lcp_bucket_ms, sessions, conversions, conversion_rate, bounce_rate, too_small
FROM rum.perf_vs_conversion
WHERE site = $1
ORDER BY lcp_bucket_ms
"""

# Sites by their latest ingest activity, so the default is the busiest one.
_SITES_QUERY = """
SELECT s.site
FROM rum.sites s
LEFT JOIN (SELECT site, max(minute) AS last_minute FROM rum.ingest_health GROUP BY site) h
    USING (site)
ORDER BY h.last_minute DESC NULLS LAST, s.site
"""


def _number(value: Any) -> Any:
    """asyncpg's Decimal (numeric) as a JSON number."""
    return float(value) if isinstance(value, Decimal) else value


_RELEASE_FIGURES = ("page_views", "lcp_p75", "inp_p75", "cls_p75", "cwv_good_pct",
                    "conversion_rate")


def _release_row(row: asyncpg.Record) -> dict[str, Any]:
    previous = None
    if row["previous_release"] is not None:
        previous = {"release": row["previous_release"]} | {
            name: _number(row[f"previous_{name}"]) for name in _RELEASE_FIGURES}
    return {
        "release": row["release"],
        "first_seen": row["first_seen"].astimezone(dt.UTC).isoformat(),
        "last_seen": row["last_seen"].astimezone(dt.UTC).isoformat(),
        **{name: _number(row[name]) for name in _RELEASE_FIGURES},
        "too_small": row["too_small"],
        "previous": previous,
    }


def _speed_row(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "lcp_bucket_ms": row["lcp_bucket_ms"],
        "sessions": row["sessions"],
        "conversions": row["conversions"],
        "conversion_rate": _number(row["conversion_rate"]),
        "bounce_rate": _number(row["bounce_rate"]),
        "too_small": row["too_small"],
    }


@contextlib.asynccontextmanager
async def _reading(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """A read-only transaction with the dashboard's own statement timeout."""
    async with conn.transaction(readonly=True):
        # jit off: compiling these wide aggregates costs about a second, more
        # than it saves on them (EXPLAIN ANALYZE at a million page views).
        await conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
        await conn.execute("SET LOCAL jit = off")
        yield


def _every_day(trend: list[dict[str, Any]], filters: Filters) -> list[dict[str, Any]]:
    """The trend with a row for each day of the period, page_views 0 where none."""
    by_day = {row["day"]: row for row in trend}
    days = (filters.first_day + dt.timedelta(days=i) for i in range(filters.days))
    return [by_day.get(day.isoformat()) or {"day": day.isoformat(), "page_views": 0}
            for day in days]


async def scorecard(pool: asyncpg.Pool, filters: Filters) -> dict[str, Any]:
    """Every figure the page shows for `filters` (the site defaults to the busiest one)."""
    async with pool.acquire() as conn:
        sites = [r["site"] for r in await conn.fetch(_SITES_QUERY)]
    site = filters.site or (sites[0] if sites else None)
    answer: dict[str, Any] = {
        "sites": sites,
        "filters": {
            "site": site,
            "from": filters.first_day.isoformat(),
            "to": filters.last_day.isoformat(),
            "device_class": filters.device_class,
            "country": filters.country,
        },
        "previous": {
            "from": filters.previous_first_day.isoformat(),
            "to": (filters.first_day - dt.timedelta(days=1)).isoformat(),
        },
        "thresholds": {metric: list(bounds) for metric, bounds in THRESHOLDS.items()},
        "too_small_page_views": TOO_SMALL_PAGE_VIEWS,
    }
    if site is None:
        return answer | {"period": None, "releases": [], "speed": []}

    # Three views, three connections: on a view over raw beacons each query
    # folds the site's beacons, so they run side by side rather than in turn.
    async def period() -> Any:
        async with pool.acquire() as conn, _reading(conn):
            text = await conn.fetchval(
                _PERIOD_QUERY, site, filters.previous_first_day, filters.first_day,
                filters.last_day, filters.device_class, filters.country)
        figures = orjson.loads(text)
        figures["trend"] = _every_day(figures["trend"], filters)
        return figures

    async def releases() -> list[dict[str, Any]]:
        async with pool.acquire() as conn, _reading(conn):
            rows = await conn.fetch(_RELEASES_QUERY, site, filters.first_day, filters.last_day)
        return [_release_row(r) for r in rows]

    async def speed() -> list[dict[str, Any]]:
        async with pool.acquire() as conn, _reading(conn):
            rows = await conn.fetch(_SPEED_QUERY, site)
        return [_speed_row(r) for r in rows]

    period_figures, release_rows, speed_rows = await asyncio.gather(period(), releases(), speed())
    return answer | {"period": period_figures, "releases": release_rows, "speed": speed_rows}


class ScorecardCache:
    """scorecard() per filters, computed once at a time and then shared for
    CACHE_SECONDS after it is done (not after it started: on slow views the
    computation alone can outlast the cache time)."""

    def __init__(self, pool: asyncpg.Pool, seconds: float = CACHE_SECONDS) -> None:
        self._pool = pool
        self._seconds = seconds
        self._tasks: dict[Filters, asyncio.Task[dict[str, Any]]] = {}
        self._done_at: dict[Filters, float] = {}

    def _fresh(self, filters: Filters, now: float) -> bool:
        task = self._tasks.get(filters)
        if task is None:
            return False
        if not task.done():
            return True
        failed = task.cancelled() or task.exception() is not None
        return not failed and now - self._done_at.get(filters, now) <= self._seconds

    async def get(self, filters: Filters) -> dict[str, Any]:
        now = time.monotonic()
        if not self._fresh(filters, now):
            for stale in [f for f in self._tasks if not self._fresh(f, now)]:
                del self._tasks[stale]
                self._done_at.pop(stale, None)
            task = asyncio.ensure_future(scorecard(self._pool, filters))
            task.add_done_callback(lambda _: self._done_at.__setitem__(filters, time.monotonic()))
            self._tasks[filters] = task
        # shield: a viewer who goes away does not cancel the others' answer.
        return await asyncio.shield(self._tasks[filters])
