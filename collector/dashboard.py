"""GET /dashboard/data: the figures of the shared scorecard page, as JSON.

The page (dashboard/index.html, dashboard/dist/) is static and asks for one
site and period, optionally one device class and country; the figures are
read through the rum views only. Counts (page views, sessions, conversions,
good / poor page views ...) are summed over rum.scorecard_daily's groups, so
a share over several groups is a ratio of sums; every p75 is
rum.p75_from_histogram over the groups' histogram bins, off by at most one bin
width (docs/analyst-guide.md), as `binome report` reads them. The releases and
"what speed costs" are rows of rum.release_comparison and rum.perf_vs_conversion;
the differences with their intervals and "what speed is worth", rows of
rum.comparisons and rum.speed_worth (collector/proof.py); the objectives, the rows
of rum.objective_results that `binome objective check` stores (collector/objectives.py); the banner of beacons
refused in the last hour, rows of rum.ingest_rejections (issue 24).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from collector import coverage, objectives, proof
from collector.beacon import SITE_NAME_PATTERN
from collector.indicators import CORE_WEB_VITALS, THRESHOLDS, TOO_SMALL

# Figures are at most this old: viewers of the same filters within it share
# one computation (a wall screen, a reload, a meeting where everyone opens the
# link), so a crowd costs PostgreSQL one query, not one per viewer.
CACHE_SECONDS = 30.0
# The figures read rollups, and page views only for the days not rolled up
# yet (today and yesterday by default; bench/dashboard.py measures them).
# Beyond this something is wrong (a lock, days never rolled up): the endpoint
# answers 503 rather than hold connections the site registry needs.
STATEMENT_TIMEOUT = "15s"
# The differences and what speed is worth (collector/proof.py) are computed in
# the background (the page never waits for them) and bounded on their own: past
# this the page says they are unavailable. Longer than the figures' timeout,
# since nobody waits; it bounds the one connection they hold.
PROOF_TIMEOUT = "30s"
# Enough to group a period's histogram rows in memory: with less, PostgreSQL
# sorts them instead, several times slower. Per dashboard connection, for the
# time of a statement.
WORK_MEM = "64MB"
# Statements of one computation running at once, each on a connection of the
# pool (db.create_pool: 4): one stays free for the site registry.
PARALLEL_STATEMENTS = 3
MAX_PERIOD_DAYS = 366
# Days the filters may name: nothing was measured before web-vitals' era, and a
# day far out makes the previous period's dates overflow (a 500, issue 20).
FIRST_VALID_DAY = dt.date(2000, 1, 1)
DAYS_AHEAD = 366
# Computations of different filters running at once: each takes up to
# PARALLEL_STATEMENTS of the pool's connections. Beyond it, a 503 with
# Retry-After instead of a queue on the pool that the site registry shares.
MAX_COMPUTATIONS = 2
BUSY_RETRY_AFTER_SECONDS = 5
DEFAULT_PERIOD_DAYS = 28
MAX_LABEL_CHARS = 64


class FilterError(ValueError):
    """A query parameter the data endpoint cannot use (answered with 400)."""


class Busy(RuntimeError):
    """MAX_COMPUTATIONS are running already (answered with 503 and Retry-After)."""


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
            parsed = dt.date.fromisoformat(value)
        except ValueError:
            raise FilterError(f"{name}: expected a date YYYY-MM-DD, got {value[:40]!r}") from None
        last_valid = today + dt.timedelta(days=DAYS_AHEAD)
        if not FIRST_VALID_DAY <= parsed <= last_valid:
            raise FilterError(f"{name}: days go from {FIRST_VALID_DAY} to {last_valid}")
        return parsed

    last_day = day("to") or today
    first_day = day("from") or last_day - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if first_day > last_day:
        raise FilterError("from: after to")
    if (last_day - first_day).days >= MAX_PERIOD_DAYS:
        raise FilterError(f"from: periods are at most {MAX_PERIOD_DAYS} days")
    return Filters(
        site=_site(params.get("site") or None),
        first_day=first_day,
        last_day=last_day,
        device_class=_label("device_class", params.get("device_class") or None),
        country=_label("country", params.get("country") or None),
    )


def parse_site(params: Mapping[str, str]) -> str:
    """?site= of GET /dashboard/proof: required there."""
    site = _site(params.get("site") or None)
    if site is None:
        raise FilterError("site: required")
    return site


def _site(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(SITE_NAME_PATTERN, value):
        raise FilterError(f"site: not a site name: {value[:40]!r}")
    return value


def _label(name: str, value: str | None) -> str | None:
    """A device class or country as the views spell them ('mobile', 'FR', '(none)').
    PostgreSQL text cannot hold NUL: refused here, not answered with a 500."""
    if value is not None and (len(value) > MAX_LABEL_CHARS or "\x00" in value):
        raise FilterError(f"{name}: not a value of the views: {value[:40]!r}")
    return value


METRICS = CORE_WEB_VITALS
# Figures come at three grains, each a grouping set that
# GROUPING(day, channel, utm_campaign) names: the whole period, one day of it
# (the trend), one channel and campaign of it (the campaign table); and the
# whole previous period, for the changes (in_period false).
PERIOD, DAY, CAMPAIGN = 0b111, 0b011, 0b100

# $1 site, $2 first day of the previous period, $3 first day, $4 last day,
# $5 device class, $6 country (NULL: all).
_CHOSEN = "($5::text IS NULL OR device_class = $5) AND ($6::text IS NULL OR country = $6)"


def _counts() -> str:
    """The counts of one rum.scorecard_daily group that add up across groups
    (its exact p75s do not, and leaving them out spares the live days their sorts)."""
    counts = ["page_views", "sessions", "conversions", "revenue", "cwv_samples", "cwv_good"]
    for m in METRICS:
        counts += [f"{m}_samples", f"{m}_good", f"{m}_poor"]
    return ", ".join(counts)


def _sums() -> str:
    """The counts summed over the groups of a grain. Under '(no consent)'
    conversions and revenue are NULL (unknown): the sums skip them, and the
    conversion rate divides by the consented groups' sessions only."""
    sums = ["sum(page_views) AS page_views",
            "sum(page_views) FILTER (WHERE consented) AS marketing_page_views",
            "sum(sessions) AS sessions",
            "sum(sessions) FILTER (WHERE consented) AS consented_sessions",
            "sum(conversions) AS conversions", "sum(revenue) AS revenue",
            "sum(cwv_samples) AS cwv_samples", "sum(cwv_good) AS cwv_good"]
    for m in METRICS:
        sums += [f"sum({m}_samples) AS {m}_samples", f"sum({m}_good) AS {m}_good",
                 f"sum({m}_poor) AS {m}_poor"]
    return ",\n           ".join(sums)


def _figures() -> str:
    """The figures the page shows from the sums (t) of one grain (p75s apart)."""
    figures = ["coalesce(t.page_views, 0)::bigint AS page_views",
               "coalesce(t.marketing_page_views, 0)::bigint AS marketing_page_views",
               "coalesce(t.sessions, 0)::bigint AS sessions"]
    figures += [f"coalesce(t.{m}_samples, 0)::bigint AS {m}_samples" for m in METRICS]
    for m in METRICS:
        figures += [f"100.0 * t.{m}_good / nullif(t.{m}_samples, 0) AS {m}_good_pct",
                    f"100.0 * t.{m}_poor / nullif(t.{m}_samples, 0) AS {m}_poor_pct"]
    figures += ["100.0 * t.cwv_good / nullif(t.cwv_samples, 0) AS cwv_good_pct",
                "100.0 * t.conversions / nullif(t.consented_sessions, 0) AS conversion_rate",
                "t.revenue"]
    return ",\n        ".join(figures)


def _whole(in_period: str) -> str:
    """The whole period's figures (or the previous one's), a row even without data."""
    return f"""
        SELECT {_figures()}
        FROM (VALUES ({in_period})) AS k(in_period)
        LEFT JOIN sums t ON t.grain = {PERIOD} AND t.in_period = k.in_period"""


# Everything but the p75s, from the groups of rum.scorecard_daily: the
# period's and the previous period's figures, the trend, the campaign table
# and the filters' lists (every device class and country of the period).
_COUNTS_QUERY = f"""
WITH groups AS MATERIALIZED (
    SELECT day >= $3 AS in_period, day, channel, utm_campaign, device_class, country,
           channel <> '(no consent)' AS consented,
           {_counts()}
    FROM rum.scorecard_daily
    WHERE site = $1 AND day BETWEEN $2 AND $4
),
sums AS MATERIALIZED (
    SELECT GROUPING(day, channel, utm_campaign) AS grain, in_period, day, channel, utm_campaign,
           {_sums()}
    FROM groups
    WHERE {_CHOSEN}
    -- the previous period's groups are few: they go through every set
    GROUP BY GROUPING SETS ((in_period), (in_period, day), (in_period, channel, utm_campaign))
)
SELECT json_build_object(
    'current', (SELECT row_to_json(f) FROM ({_whole("true")}) f),
    'previous', (SELECT row_to_json(f) FROM ({_whole("false")}) f),
    'trend', (SELECT coalesce(json_agg(f ORDER BY f.day), '[]') FROM (
        SELECT t.day, {_figures()}
        FROM sums t WHERE t.grain = {DAY} AND t.in_period) f),
    'campaigns', (SELECT coalesce(json_agg(f ORDER BY f.page_views DESC, f.channel,
                                           f.utm_campaign), '[]') FROM (
        SELECT t.channel, t.utm_campaign, {_figures()},
               rum.too_small(t.page_views::bigint) AS too_small
        FROM sums t WHERE t.grain = {CAMPAIGN} AND t.in_period) f),
    'device_classes', (SELECT coalesce(json_agg(device_class ORDER BY n DESC, device_class), '[]')
        FROM (SELECT device_class, sum(page_views) AS n FROM groups WHERE in_period
              GROUP BY device_class) d),
    'countries', (SELECT coalesce(json_agg(country ORDER BY n DESC, country), '[]')
        FROM (SELECT country, sum(page_views) AS n FROM groups WHERE in_period
              GROUP BY country) c),
    -- Every day of the site, every device and country: the span of "what
    -- speed costs" and of the releases' figures. The days read above and the
    -- others, so the live ones are not computed twice; the others from
    -- rum.site_daily, a row per day whatever the history kept.
    'all_time', (SELECT json_build_object(
            'page_views', coalesce(sum(page_views), 0)::bigint,
            'marketing_page_views', coalesce(sum(marketing_page_views), 0)::bigint)
        FROM (SELECT page_views, CASE WHEN consented THEN page_views ELSE 0 END
                  AS marketing_page_views
              FROM groups
              UNION ALL
              SELECT page_views, marketing_page_views FROM rum.site_daily
              WHERE site = $1 AND (day < $2 OR day > $4)) a)
)::text
"""


def _p75_query(metric: str, *, split: bool) -> str:
    """One metric's p75s at every grain of the period, and over the whole
    previous period: rum.p75_from_histogram over the chosen groups'
    rum.scorecard_histograms bins, each bin summed first (the aggregate keeps
    an entry per row it is given). Off by at most one bin width.

    One statement per metric, on connections of their own: reading the
    histograms is most of the page's cost, and a metric's rows are its own, so
    the three run side by side without reading anything twice. The previous
    period's rows are read apart, since they are only summed per bin. Rows are
    grouped by bin number (the bounds are the same for every row of a bin).

    Without a device class or country chosen (split false), the bins come from
    rum.campaign_histograms: the same sums from rows already summed over
    devices and countries, several times fewer."""
    histograms = (f"FROM rum.scorecard_histograms WHERE site = $1 AND metric = '{metric}'"
                  f" AND {_CHOSEN}" if split else
                  f"FROM rum.campaign_histograms WHERE site = $1 AND metric = '{metric}'"
                  " AND $5::text IS NULL AND $6::text IS NULL")
    bins = ("bin, min(bin_lower) AS bin_lower, min(bin_upper) AS bin_upper,"
            " sum(page_views)::bigint AS page_views")
    return f"""
SELECT grain, in_period, day, channel, utm_campaign,
       rum.p75_from_histogram(bin_lower, bin_upper, page_views) AS p75
FROM (SELECT GROUPING(day, channel, utm_campaign) AS grain, true AS in_period, day, channel,
             utm_campaign, {bins}
      {histograms} AND day BETWEEN $3 AND $4
      GROUP BY GROUPING SETS ((bin), (day, bin), (channel, utm_campaign, bin))
      UNION ALL
      SELECT {PERIOD}, false, NULL, NULL, NULL, {bins}
      {histograms} AND day >= $2 AND day < $3
      GROUP BY bin) AS per_bin
GROUP BY grain, in_period, day, channel, utm_campaign
"""


# Keyed by (metric, whether a device class or country is chosen).
_P75_QUERIES = {(metric, split): _p75_query(metric, split=split)
                for metric in METRICS for split in (False, True)}

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
SELECT s.site, s.currency
FROM rum.sites s
LEFT JOIN (SELECT site, max(minute) AS last_minute FROM rum.ingest_health GROUP BY site) h
    USING (site)
ORDER BY h.last_minute DESC NULLS LAST, s.site
"""

# Issue 24: beacons refused in the last hour, for the page's banner: the site's
# own (but the 503s, the collector's state, not the site's set-up), and every
# site's refusals naming a site not registered, which belong to no site's page.
_REFUSED_REASONS_NOT_SHOWN = ["overloaded", "shutting_down", "sites_unavailable"]
_REJECTIONS_QUERY = """
SELECT reason, site, origin, sum(refused)::bigint AS refused
FROM rum.ingest_rejections
WHERE minute > now() - interval '1 hour'
  AND (reason = 'unknown_site' OR (site = $1 AND reason <> ALL ($2::text[])))
GROUP BY reason, site, origin
ORDER BY refused DESC, reason, site, origin
LIMIT 5
"""


async def _rejections(conn: asyncpg.Connection, site: str | None) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(_REJECTIONS_QUERY, site,
                                              _REFUSED_REASONS_NOT_SHOWN)]


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
async def _reading(conn: asyncpg.Connection, timeout: str | None = None) -> AsyncIterator[None]:
    """A read-only transaction with the dashboard's own statement timeout."""
    async with conn.transaction(readonly=True):
        # jit off: compiling these wide aggregates costs more than it saves on
        # them. One round trip for both settings.
        await conn.execute(f"SET LOCAL statement_timeout = '{timeout or STATEMENT_TIMEOUT}';"
                           f" SET LOCAL work_mem = '{WORK_MEM}'; SET LOCAL jit = off")
        yield


def _add_p75s(figures: dict[str, Any], p75s: dict[str, list[asyncpg.Record]]) -> None:
    """Each row of figures gets its p75s (None where no page view has the metric)."""
    found: dict[tuple[Any, ...], dict[str, float]] = {}
    for metric, rows in p75s.items():
        for r in rows:
            day = r["day"].isoformat() if r["day"] else None
            key = (r["grain"], r["in_period"], day, r["channel"], r["utm_campaign"])
            found.setdefault(key, {})[f"{metric}_p75"] = r["p75"]

    def add(row: dict[str, Any], *key: Any) -> None:
        values = found.get(key, {})
        row.update({f"{m}_p75": values.get(f"{m}_p75") for m in METRICS})

    add(figures["current"], PERIOD, True, None, None, None)
    add(figures["previous"], PERIOD, False, None, None, None)
    for row in figures["trend"]:
        add(row, DAY, True, row["day"], None, None)
    for row in figures["campaigns"]:
        add(row, CAMPAIGN, True, None, row["channel"], row["utm_campaign"])


def _every_day(trend: list[dict[str, Any]], filters: Filters) -> list[dict[str, Any]]:
    """The trend with a row for each day of the period, page_views 0 where none."""
    by_day = {row["day"]: row for row in trend}
    days = (filters.first_day + dt.timedelta(days=i) for i in range(filters.days))
    return [by_day.get(day.isoformat()) or {"day": day.isoformat(), "page_views": 0}
            for day in days]


async def compute_proof(pool: asyncpg.Pool, site: str) -> dict[str, Any]:
    """rum.comparisons' and rum.speed_worth's rows of `site`: whole-site figures
    (every device and country), as the views give them. One after the other on
    one connection: computed in the background (proof.ProofCache), they leave
    the pool's other connections to the scorecards."""
    async with pool.acquire() as conn, _reading(conn, PROOF_TIMEOUT):
        comparisons = await conn.fetch(proof.COMPARISONS_QUERY, site)
        worth = await conn.fetch(proof.SPEED_WORTH_QUERY, site)
    return {"comparisons": [proof.as_dict(r) for r in comparisons],
            "speed_worth": [proof.as_dict(r) for r in worth]}


async def scorecard(pool: asyncpg.Pool, filters: Filters,
                    proofs: proof.ProofCache | None = None,
                    objective_check_minutes: float = 0) -> dict[str, Any]:
    """Every figure the page shows for `filters` (the site defaults to the busiest
    one). The differences and what speed is worth are `proofs`' when given,
    at once, maybe pending (ScorecardCache.get gives the latest); else computed here.
    objective_check_minutes: how often `binome serve` checks the objectives (0:
    never), for the page to say when an objective not checked yet will be."""
    async with pool.acquire() as conn:
        currencies = {r["site"]: r["currency"] for r in await conn.fetch(_SITES_QUERY)}
        sites = list(currencies)
        site = filters.site or (sites[0] if sites else None)
        rejections = await _rejections(conn, site)
    answer: dict[str, Any] = {
        "sites": sites,
        "rejections": rejections,
        # The ISO 4217 code of the site's revenue (`binome site add --currency`).
        "currency": currencies.get(site or "", "EUR"),
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
        "too_small_page_views": TOO_SMALL,
        "objective_check_minutes": objective_check_minutes,
    }
    if site is None:
        return answer | {"period": None, "all_time": None, "releases": [], "speed": [],
                         "comparisons": [], "speed_worth": [], "proof": {"pending": False},
                         "objectives": []}

    args = (site, filters.previous_first_day, filters.first_day, filters.last_day,
            filters.device_class, filters.country)

    split = filters.device_class is not None or filters.country is not None
    # The statements run side by side on their own connections, longest
    # first: the page waits for about the slowest of them, not their sum.
    slots = asyncio.Semaphore(PARALLEL_STATEMENTS)

    async def run(method: str, sql: str, *values: Any) -> Any:
        async with slots, pool.acquire() as conn, _reading(conn):
            return await getattr(conn, method)(sql, *values)

    # The differences and what speed is worth: from `proofs` as known now
    # (computed in the background when they are not), else computed here.
    proven = (proofs.current(site) if proofs is not None
              else {"proof": {"pending": False}, **await compute_proof(pool, site)})

    *per_metric, counts, releases, speed, objective_rows, covered = await asyncio.gather(
        *(run("fetch", _P75_QUERIES[metric, split], *args) for metric in METRICS),
        run("fetchval", _COUNTS_QUERY, *args),
        run("fetch", _RELEASES_QUERY, site, filters.first_day, filters.last_day),
        run("fetch", _SPEED_QUERY, site),
        run("fetch", objectives.DASHBOARD_QUERY, site),
        # Issue 22: the share of page views behind each p75 (the country filter
        # does not apply: rum.metric_coverage has no country).
        run("fetch", coverage.QUERY, site, filters.first_day, filters.last_day,
            filters.device_class))
    figures = orjson.loads(counts)
    all_time = figures.pop("all_time")
    _add_p75s(figures, dict(zip(METRICS, per_metric, strict=True)))
    figures["trend"] = _every_day(figures["trend"], filters)
    figures["coverage"] = coverage.summarize(covered)
    return answer | {"period": figures, "all_time": all_time,
                     "releases": [_release_row(r) for r in releases],
                     "speed": [_speed_row(r) for r in speed],
                     "objectives": [objectives.dashboard_row(r) for r in objective_rows]} | proven


class ScorecardCache:
    """scorecard() per filters, computed once at a time and then shared for
    CACHE_SECONDS after it is done (not after it started: on slow views the
    computation alone can outlast the cache time). At most `computations`
    filters are computed at once; a request for yet another raises Busy."""

    def __init__(self, pool: asyncpg.Pool, seconds: float = CACHE_SECONDS,
                 computations: int = MAX_COMPUTATIONS, objective_check_minutes: float = 0) -> None:
        self._pool = pool
        self._objective_check_minutes = objective_check_minutes
        self._seconds = seconds
        self._computations = computations
        self._running = 0
        self._tasks: dict[Filters, asyncio.Task[dict[str, Any]]] = {}
        self._done_at: dict[Filters, float] = {}
        self._proofs = proof.ProofCache(lambda site: compute_proof(pool, site))

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
            if self._running >= self._computations:
                raise Busy(f"{self._running} computations of the figures are running")
            self._running += 1
            task = asyncio.ensure_future(scorecard(self._pool, filters, self._proofs,
                                                   self._objective_check_minutes))
            task.add_done_callback(lambda _: self._done(filters))
            self._tasks[filters] = task
        # shield: a viewer who goes away does not cancel the others' answer.
        figures = await asyncio.shield(self._tasks[filters])
        site = figures["filters"]["site"]
        # The proof as known now, not as it was when the figures were computed
        # (they are shared for CACHE_SECONDS; the proof may have come since).
        return figures if site is None else figures | self._proofs.current(site)

    def proof(self, site: str) -> dict[str, Any]:
        """GET /dashboard/proof: the site's differences and what speed is worth
        as known now (a page whose figures came without them asks again)."""
        return {"site": site} | self._proofs.current(site)

    async def close(self) -> None:
        """Cancel the background computations (at shutdown, before the pool closes)."""
        await self._proofs.close()

    def _done(self, filters: Filters) -> None:
        self._running -= 1
        self._done_at[filters] = time.monotonic()
