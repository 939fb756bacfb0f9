"""GET /dashboard/data: the figures of the shared scorecard page, as JSON.

The page itself (dashboard/index.html and its bundle in dashboard/dist/) is
static; it asks this module for one site, one period and optionally one device
class and one country. Everything here is read through the `rum` views only.

The period's figures (current and previous period, the trend per day, the
campaign table, the device and country lists) are added up from the daily
groups of rum.scorecard_daily, as docs/analyst-guide.md says to: closed days
come from their rollups, today (and any day not rolled up yet) is computed
live, with the same figures either way.
- Counts are summed: page views, sessions, conversions, revenue, samples, and
  good / poor counts recovered from the view's shares (round(pct * samples /
  100)), so a share over several groups is a ratio of sums, never a mean of
  percentages. Sessions are summed over groups: a session's channel and
  campaign are its landing page's, so the groups of a day partition its
  sessions (the stored sid is a per-day pseudonym, so a session seen on two
  days counts on each, as in rum.scorecard_daily).
- The conversion rate is conversions over the sessions of consented groups;
  the share of page views with marketing consent is everything outside the
  '(no consent)' group.
- A p75 over several groups or days is rum.p75_from_histogram over their
  rum.scorecard_histograms bins: **off by at most one bin width** (LCP 100 ms
  up to 10 s, INP 10 ms up to 1 s, CLS 0.01 up to 1, wider beyond:
  docs/analyst-guide.md). Over a single group (one day, device, country and campaign) it is the view's exact
  p75. The page says so in its footnote and its p75 tooltips.
The release comparison and "what speed costs" are the rows of
rum.release_comparison and rum.perf_vs_conversion as they are.

Cost (bench/dashboard.py, 30 days of one million page views, 2 cores): see
README, "The dashboard".
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
# link), so a crowd costs PostgreSQL one query, not one per viewer.
CACHE_SECONDS = 30.0
# The figures read rollups and one live day (well under a second for 30 days
# of a million page views); a year of a busier site takes longer. Beyond this
# something is wrong (a lock, a day never rolled up): the endpoint answers 503
# rather than hold a connection the beacon writes need.
STATEMENT_TIMEOUT = "15s"
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


METRICS = ("lcp", "inp", "cls")


def _sums() -> str:
    """Counts of one rum.scorecard_daily group that add up across groups.

    The view gives good / poor shares as percentages of *_samples; the counts
    behind them are recovered exactly (rounding absorbs numeric's last digits),
    so that shares over several groups are ratios of sums, never means of
    percentages. Under '(no consent)' conversions and revenue are NULL: sums
    skip them, and the conversion rate divides by consented sessions only."""
    counts = ["page_views", "sessions", "conversions", "revenue", "cwv_samples",
              "round(cwv_good_pct * cwv_samples / 100) AS cwv_good"]
    for metric in METRICS:
        counts += [f"{metric}_samples", f"{metric}_p75",
                   f"round({metric}_good_pct * {metric}_samples / 100) AS {metric}_good",
                   f"round({metric}_poor_pct * {metric}_samples / 100) AS {metric}_poor"]
    return ",\n           ".join(counts)


def _totals() -> str:
    """The sums of a set of groups (see _figures), as named columns."""
    totals = ["sum(page_views) AS page_views",
              "sum(page_views) FILTER (WHERE consented) AS marketing_page_views",
              "sum(sessions) AS sessions",
              "sum(sessions) FILTER (WHERE consented) AS consented_sessions",
              "sum(conversions) AS conversions", "sum(revenue) AS revenue",
              "sum(cwv_samples) AS cwv_samples", "sum(cwv_good) AS cwv_good"]
    for m in METRICS:
        # One group with the metric: its exact p75 (rum.scorecard_daily's).
        totals += [f"sum({m}_samples) AS {m}_samples", f"sum({m}_good) AS {m}_good",
                   f"sum({m}_poor) AS {m}_poor", f"count({m}_p75) AS {m}_groups",
                   f"max({m}_p75) AS {m}_exact_p75"]
    return ",\n               ".join(totals)


def _figures_from_totals() -> str:
    """What the page shows, from _totals' columns (t) and the histogram p75s (h)."""
    figures = ["coalesce(t.page_views, 0)::bigint AS page_views",
               "coalesce(t.marketing_page_views, 0)::bigint AS marketing_page_views",
               "coalesce(t.sessions, 0)::bigint AS sessions"]
    for m in METRICS:
        figures.append(f"CASE WHEN t.{m}_groups = 1 THEN t.{m}_exact_p75 ELSE h.{m}_p75 END"
                       f" AS {m}_p75")
    for m in METRICS:
        figures.append(f"coalesce(t.{m}_samples, 0)::bigint AS {m}_samples")
    for m in METRICS:
        figures += [f"100.0 * t.{m}_good / nullif(t.{m}_samples, 0) AS {m}_good_pct",
                    f"100.0 * t.{m}_poor / nullif(t.{m}_samples, 0) AS {m}_poor_pct"]
    figures += ["100.0 * t.cwv_good / nullif(t.cwv_samples, 0) AS cwv_good_pct",
                "100.0 * t.conversions / nullif(t.consented_sessions, 0) AS conversion_rate",
                "t.revenue"]
    return ",\n       ".join(figures)


def _figures(keys: tuple[str, ...], where: str) -> str:
    """One row of figures per value of `keys` (one row in all when there are no
    keys) over the chosen groups and histogram bins that match `where`.

    Counts are summed over the rum.scorecard_daily groups. A p75 over several
    groups is rum.p75_from_histogram over their rum.scorecard_histograms bins,
    summed per bin first (the aggregate keeps one entry per input row); it is
    off by at most one bin width. Over a single group it is that group's exact
    p75."""
    key_list = "".join(f"{k}, " for k in keys)
    group_by = f"GROUP BY {', '.join(keys)}" if keys else ""
    p75s = ", ".join(f"max(p75) FILTER (WHERE metric = '{m}') AS {m}_p75" for m in METRICS)
    histogram_p75s = f"""(
        SELECT {key_list}{p75s}
        FROM (SELECT {key_list}metric,
                     rum.p75_from_histogram(bin_lower, bin_upper, page_views) AS p75
              FROM (SELECT {key_list}metric, bin_lower, bin_upper,
                           sum(page_views)::bigint AS page_views
                    FROM bins WHERE {where}
                    GROUP BY {key_list}metric, bin_lower, bin_upper) per_bin
              GROUP BY {key_list}metric) per_metric
        {group_by}) h"""
    join = f"LEFT JOIN {histogram_p75s} USING ({', '.join(keys)})" if keys else (
        f"CROSS JOIN {histogram_p75s}")
    return f"""
    SELECT {"".join(f"t.{k}, " for k in keys)}{_figures_from_totals()}
    FROM (SELECT {key_list}{_totals()}
          FROM chosen WHERE {where} {group_by}) t
    {join}"""


# $1 site, $2 first day of the previous period, $3 first day, $4 last day,
# $5 device class, $6 country (NULL: all).
_FILTERS = "($5::text IS NULL OR device_class = $5) AND ($6::text IS NULL OR country = $6)"
_PERIOD_QUERY = f"""
WITH groups AS MATERIALIZED (
    SELECT day, day >= $3 AS in_period, channel, utm_campaign, device_class, country,
           channel <> '(no consent)' AS consented,
           {_sums()}
    FROM rum.scorecard_daily
    WHERE site = $1 AND day BETWEEN $2 AND $4
),
chosen AS MATERIALIZED (
    SELECT * FROM groups WHERE {_FILTERS}
),
-- The chosen groups' bins, added up over device classes and countries: the
-- finest grain any figure below needs.
bins AS MATERIALIZED (
    SELECT day, day >= $3 AS in_period, channel, utm_campaign, metric, bin_lower, bin_upper,
           sum(page_views)::bigint AS page_views
    FROM rum.scorecard_histograms
    WHERE site = $1 AND day BETWEEN $2 AND $4 AND metric IN ({", ".join(f"'{m}'" for m in METRICS)})
      AND {_FILTERS}
    GROUP BY day, channel, utm_campaign, metric, bin, bin_lower, bin_upper
)
SELECT json_build_object(
    'current', (SELECT row_to_json(f) FROM ({_figures((), "in_period")}) f),
    'previous', (SELECT row_to_json(f) FROM ({_figures((), "NOT in_period")}) f),
    'trend', (SELECT coalesce(json_agg(f ORDER BY f.day), '[]') FROM (
        {_figures(("day",), "in_period")}) f),
    'campaigns', (SELECT coalesce(json_agg(f ORDER BY f.page_views DESC, f.channel,
                                           f.utm_campaign), '[]') FROM (
        SELECT c.*, c.page_views < {TOO_SMALL_PAGE_VIEWS} AS too_small FROM (
            {_figures(("channel", "utm_campaign"), "in_period")}) c) f),
    'device_classes', (SELECT coalesce(json_agg(device_class ORDER BY n DESC, device_class), '[]')
        FROM (SELECT device_class, sum(page_views) AS n FROM groups WHERE in_period
              GROUP BY device_class) d),
    'countries', (SELECT coalesce(json_agg(country ORDER BY n DESC, country), '[]')
        FROM (SELECT country, sum(page_views) AS n FROM groups WHERE in_period
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
        # jit off: compiling these wide aggregates costs more than it saves on
        # them. One round trip for both settings.
        await conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}';"
                           " SET LOCAL jit = off")
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

    # Three statements on three connections, side by side: the page waits for
    # the slowest of them, not for their sum.
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
