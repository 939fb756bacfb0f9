"""`binome report`: the shared scorecard in the terminal, read from the rum views.

Per channel and campaign over the last N UTC days: page views, sessions, p75
LCP / INP / CLS coloured good / needs improvement / poor, the share of good
experiences, conversion rate and revenue; then the releases, the differences
with their intervals and what speed is worth (collector/report_proof.py). The
shared objectives (rum.objectives) come first, with their trend over 8 weeks. A channel and
campaign spans many rum.scorecard_daily groups (days, devices, countries): its
counts are sums, and its p75s are read from the summed histograms of
rum.scorecard_histograms (off by at most one bin width), never averaged.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from rich.console import Console
from rich.text import Text

from collector import proof, report_proof
from collector import objectives as objective_figures
from collector.report_layout import BREAK, Row, fit
from collector.coverage import METRICS as COVERAGE_METRICS
from collector.coverage import coverage_line, fetch_coverage
from collector.indicators import CORE_WEB_VITALS, TOO_SMALL, rating
from collector.scrub import strip_controls

# Bin widths where p75s usually fall (binome.metric_bin_edges).
BIN_WIDTH = {"lcp": "100 ms", "inp": "10 ms", "cls": "0.01"}
_STYLE = {"good": "green", "needs-improvement": "yellow", "poor": "red"}

_SCORECARD = """
SELECT channel, utm_campaign,
       sum(page_views)::bigint AS page_views,
       sum(sessions)::bigint AS sessions,
       sum(conversions)::bigint AS conversions,
       sum(revenue) AS revenue,
       sum(cwv_good)::bigint AS cwv_good,
       sum(cwv_samples)::bigint AS cwv_samples
FROM rum.scorecard_daily
WHERE day > $1::date - $2::int AND ($3::text IS NULL OR site = $3)
GROUP BY channel, utm_campaign
ORDER BY sum(page_views) DESC, channel, utm_campaign
"""
_CWV_NAMES = ", ".join(f"'{metric}'" for metric in CORE_WEB_VITALS)
_BINS = f"""
SELECT channel, utm_campaign, metric, bin_lower, bin_upper, sum(page_views)::bigint AS page_views
FROM rum.scorecard_histograms
WHERE day > $1::date - $2::int AND ($3::text IS NULL OR site = $3)
  AND metric IN ({_CWV_NAMES})
GROUP BY channel, utm_campaign, metric, bin, bin_lower, bin_upper
"""
_SITES = "SELECT site, currency FROM rum.sites"
_RELEASES = """
SELECT site, release, first_seen, last_seen, page_views, lcp_p75, inp_p75, cls_p75,
       lcp_samples, inp_samples, cls_samples, cwv_good_pct, conversion_rate, too_small
FROM rum.release_comparison
WHERE ($1::text IS NULL OR site = $1) AND last_seen >= $2::date - $3::int + 1
ORDER BY site, first_seen DESC
"""

# (lower, upper, page views): a row of rum.scorecard_histograms
Bin = tuple[float | None, float | None, int]


def p75_from_bins(bins: list[Bin]) -> float | None:
    """percentile_cont(0.75) estimated from histogram bins, off by at most one bin width.

    percentile_cont interpolates between the values at ranks floor(h) and ceil(h),
    h = 0.75 (N - 1). Each of those is estimated inside its own bin (values taken
    as spread evenly over the bin), so each is within one bin width of the true
    value, and so is their interpolation with the same weights. A value in the
    last, unbounded bin is taken as that bin's lower edge.
    """
    bins = sorted((b for b in bins if b[2] > 0), key=lambda b: (b[0] is not None, b[0] or 0))
    total = sum(n for _, _, n in bins)
    if total == 0:
        return None
    h = 0.75 * (total - 1)
    first, second = math.floor(h), math.ceil(h)

    def value_at(rank: int) -> float:
        before = 0
        for lower, upper, n in bins:
            if rank < before + n:
                low = lower or 0.0
                if upper is None:
                    return low
                return low + (rank - before + 0.5) / n * (upper - low)
            before += n
        raise AssertionError("rank beyond the histogram")

    low_value = value_at(first)
    if second == first:
        return low_value
    return low_value + (h - first) * (value_at(second) - low_value)


@dataclass
class ScorecardRow:
    channel: str
    campaign: str
    page_views: int
    sessions: int
    conversions: int | None
    revenue: Any
    cwv_good: int
    cwv_samples: int
    bins: dict[str, list[Bin]] = field(default_factory=dict)

    def p75(self, metric: str) -> float | None:
        return p75_from_bins(self.bins.get(metric, []))

    def samples(self, metric: str) -> int:
        return sum(n for _, _, n in self.bins.get(metric, []))

    @property
    def good_share(self) -> float | None:
        return 100 * self.cwv_good / self.cwv_samples if self.cwv_samples else None

    @property
    def conversion_rate(self) -> float | None:
        if self.conversions is None or not self.sessions:
            return None
        return 100 * self.conversions / self.sessions


async def fetch_scorecard(conn: asyncpg.Connection, *, site: str | None, days: int,
                          today: dt.date) -> list[ScorecardRow]:
    rows = {(r["channel"], r["utm_campaign"]): ScorecardRow(
        r["channel"], r["utm_campaign"], r["page_views"], r["sessions"], r["conversions"],
        r["revenue"], r["cwv_good"], r["cwv_samples"])
        for r in await conn.fetch(_SCORECARD, today, days, site)}
    for r in await conn.fetch(_BINS, today, days, site):
        row = rows.get((r["channel"], r["utm_campaign"]))
        if row is not None:
            row.bins.setdefault(r["metric"], []).append(
                (r["bin_lower"], r["bin_upper"], r["page_views"]))
    return list(rows.values())


class ReportError(ValueError):
    """What the report was asked cannot be answered (an unknown site)."""


def _metric(metric: str, value: float | None, samples: int | None = None) -> Text:
    if value is None:
        return Text("–", style="dim")
    shown = f"{value:.2f}" if metric == "cls" else f"{value:,.0f} ms"
    text = Text(shown, style=_STYLE[rating(metric, value) or "good"])
    if samples is not None:
        text.append(f"{BREAK}({samples:,})", style="dim")
    return text


def _data(value: str | None) -> Text:
    """A stored string as plain text: never read as rich markup ([link=...]), and
    without control characters (terminal escapes), whatever a beacon put in it."""
    return Text(strip_controls(str(value)) if value is not None else "–")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def _size(page_views: int) -> Text:
    text = Text(f"{page_views:,}")
    if page_views < TOO_SMALL:
        text.append(f"{BREAK}too small", style="bold yellow")
    return text


_P75S = tuple(f"{metric.upper()} p75 (n)" for metric in CORE_WEB_VITALS)


def money(amount: Any) -> str:
    """An amount written whole, with its cents: "1,234,567.89"."""
    return "–" if amount is None else f"{amount:,.2f}"


def currency_label(currencies: set[str]) -> str:
    """The one currency of the revenue shown, or why there is none."""
    return next(iter(currencies)) if len(currencies) == 1 else "mixed currencies"


_STATUS_STYLE = {"met": "green", "at risk": "yellow", "missed": "bold red", "too few": "dim"}


def objectives_rows(rows: list[asyncpg.Record]) -> list[Row]:
    """rum.objective_results: each objective's status, value (95 % interval),
    target and its values over the last 8 weeks, oldest first, as the last
    check stored them (rum.objectives computes them now: minutes at scale).
    Names are what `objective remove` takes: they wrap, never cut (report_layout)."""
    shown = []
    for row in rows:
        metric = row["metric"]
        value = Text(f"{metric}{BREAK}{objective_figures.format_value(metric, row['value'])}")
        if row["value_low"] is not None:
            value.append(f"{BREAK}({objective_figures.format_value(metric, row['value_low'])} to "
                         f"{objective_figures.format_value(metric, row['value_high'])})",
                         style="dim")
        weeks = [objective_figures.format_value(metric, w["value"]).removesuffix(" ms")
                 for w in orjson.loads(row["weeks"] or "[]")]
        trend = " ".join(weeks[:4]) + (BREAK + " ".join(weeks[4:]) if weeks[4:] else "")
        shown.append(Row(
            (_data(row["name"]), _data(row["site"]),
             _data(objective_figures.format_scope(_scope(row["scope"]))),
             Text(row["status"] or "–", style=_STATUS_STYLE.get(row["status"], ""))),
            (value, Text(objective_figures.format_target(metric, row["target"])),
             Text("–" if row["n"] is None else f"{row['n']:,}"), Text(trend, style="dim"))))
    return shown


def _scope(scope: Any) -> dict[str, Any]:
    """jsonb as asyncpg returns it (a str without a type codec)."""
    return orjson.loads(scope) if isinstance(scope, str | bytes) else dict(scope or {})


async def print_report(database_url: str, *, site: str | None, days: int,
                       console: Console | None = None, today: dt.date | None = None) -> None:
    """Print the report for the last `days` UTC days, fitted to the console's
    width ($COLUMNS, else the terminal's, else 80: rich's Console). Raises
    ReportError for a site that is not registered."""
    console = console or Console()
    conn = await asyncpg.connect(database_url)
    try:
        currencies = {r["site"]: r["currency"] for r in await conn.fetch(_SITES)}
        if site is not None and site not in currencies:
            raise ReportError(f"unknown site: {site}")
        if today is None:
            today = await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
        assert today is not None
        scorecard = await fetch_scorecard(conn, site=site, days=days, today=today)
        releases = await conn.fetch(_RELEASES, site, today, days)
        comparisons = await conn.fetch(proof.COMPARISONS_QUERY, site)
        worth = await conn.fetch(proof.SPEED_WORTH_QUERY, site)
        objectives = await objective_figures.fetch_stored(conn, site)
        coverage = await fetch_coverage(conn, site=site, last_day=today,
                                        first_day=today - dt.timedelta(days=days - 1))
    finally:
        await conn.close()

    width = console.width
    if objectives:
        console.print(*fit(f"Objectives (last {objective_figures.WINDOW_DAYS} days)",
                           ("objective", "site", "scope", "status"),
                           ("value (95 % interval)", "target", "n", "8 weeks"),
                           objectives_rows(objectives), width))
        console.print(Text(
            "met / missed: the 95 % interval lies wholly within / beyond the target; at risk: "
            f"the target lies inside it; too few: under {TOO_SMALL} page views (sessions for "
            "conversion_rate). 8 weeks: the value of each week, oldest first.", style="dim"))

    since = today - dt.timedelta(days=days - 1)
    title = f"Shared scorecard — {site or 'all sites'}, {since} to {today} (UTC)"
    if not scorecard:
        console.print(_data(f"{title}: no page views yet."), style="dim")
    else:
        # Revenue in the sites' currency; sums over sites of several currencies mean nothing.
        shown = {currencies[site]} if site is not None else set(currencies.values())
        currency = currency_label(shown)
        rows = [Row((_data(row.channel), _data(row.campaign)), (
            _size(row.page_views), Text(f"{row.sessions:,}"),
            _metric("lcp", row.p75("lcp"), row.samples("lcp")),
            _metric("inp", row.p75("inp"), row.samples("inp")),
            _metric("cls", row.p75("cls"), row.samples("cls")),
            Text(_pct(row.good_share)), Text(_pct(row.conversion_rate)),
            Text(money(row.revenue) if len(shown) == 1 else "–")),
            style="dim" if row.page_views < TOO_SMALL else None) for row in scorecard]
        console.print(*fit(_data(title), ("channel", "campaign"), (
            "page views", "sessions", *_P75S, "good CWV", "conversion",
            f"revenue ({currency})"), rows, width))
        if len(shown) > 1:
            console.print(Text(f"Revenue: the sites' currencies differ ({', '.join(sorted(shown))}"
                               "); pass --site for one site's.", style="dim"))
        console.print(Text(
            "Green good, yellow needs improvement, red poor (CrUX thresholds). (n): page views "
            "with the metric. p75s over several days or devices come from histograms: within "
            f"{BIN_WIDTH['lcp']} (LCP), {BIN_WIDTH['inp']} (INP), {BIN_WIDTH['cls']} (CLS). "
            "Good CWV: page views whose LCP, CLS and (where measured) INP are all good. "
            "'(no consent)': page views without marketing consent, whose conversions are not "
            f"measured. Under {TOO_SMALL} page views: too small to read.", style="dim"))
        # Issue 22: how much of the traffic each p75 speaks for.
        console.print(_data("Coverage (page views with each metric):"))
        for metric in COVERAGE_METRICS:
            console.print(_data("  " + coverage_line(metric, coverage[metric])))

    if releases:
        rows = [Row((_data(row["site"]), _data(row["release"])), (
            Text(f"{row['first_seen']:%Y-%m-%d}{BREAK}{row['first_seen']:%H:%M}"),
            Text(f"{row['last_seen']:%Y-%m-%d}{BREAK}{row['last_seen']:%H:%M}"),
            _size(row["page_views"]),
            _metric("lcp", row["lcp_p75"], row["lcp_samples"]),
            _metric("inp", row["inp_p75"], row["inp_samples"]),
            _metric("cls", row["cls_p75"], row["cls_samples"]),
            Text(_pct(row["cwv_good_pct"])), Text(_pct(row["conversion_rate"]))),
            style="dim" if row["too_small"] else None) for row in releases]
        console.print(*fit("Releases (exact p75 over each release)", ("site", "release"),
                           ("first seen", "last seen", "page views", *_P75S, "good CWV",
                            "conversion"), rows, width))

    compared = report_proof.comparisons_tables(
        comparisons, {(row["site"], row["release"]) for row in releases}, width)
    if compared:
        console.print(*compared)
        console.print(Text(
            "Each difference with its 95 % interval: better or worse when the interval "
            "excludes zero, no clear change when it holds it; too few under "
            f"{TOO_SMALL} page views a side (sessions for conversion). Releases over their "
            "whole life, variants over 28 days, the last 7 complete days against the 7 before; "
            "every device and country (docs/analyst-guide.md, \"How sure is a difference\").",
            style="dim"))
    worth_tables = report_proof.worth_tables(worth, currencies, width)
    if worth_tables:
        console.print(*worth_tables)
        console.print(Text(report_proof.CAVEAT, style="bold yellow"))
        console.print(Text(
            "Sessions with marketing consent, by their landing page's LCP. The revenue's "
            "interval takes the mean value of a conversion as known.", style="dim"))
