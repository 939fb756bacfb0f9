"""`binome report`: the shared scorecard in the terminal, read from the rum views."""

from __future__ import annotations

import math

import asyncpg
from rich.console import Console
from rich.table import Table
from rich.text import Text

# CrUX thresholds (good, poor): https://web.dev/articles/vitals
THRESHOLDS = {"lcp": (2500, 4000), "inp": (200, 500), "cls": (0.1, 0.25)}
_STYLE = {"good": "green", "needs-improvement": "yellow", "poor": "red"}

_SCORECARD = """
SELECT channel, utm_campaign,
       sum(page_views)::bigint AS page_views,
       sum(lcp_p75 * lcp_samples) / nullif(sum(lcp_samples) FILTER (WHERE lcp_p75 IS NOT NULL), 0) AS lcp,
       sum(inp_p75 * inp_samples) / nullif(sum(inp_samples) FILTER (WHERE inp_p75 IS NOT NULL), 0) AS inp,
       sum(cls_p75 * cls_samples) / nullif(sum(cls_samples) FILTER (WHERE cls_p75 IS NOT NULL), 0) AS cls,
       sum(cwv_good_pct * page_views) / nullif(sum(page_views) FILTER (WHERE cwv_good_pct IS NOT NULL), 0) AS cwv_good,
       sum(conversion_rate * sessions) / nullif(sum(sessions) FILTER (WHERE conversion_rate IS NOT NULL), 0) AS conversion_rate,
       sum(revenue) AS revenue
FROM rum.scorecard_daily
WHERE day > current_date - $1::int AND ($2::text IS NULL OR site = $2)
GROUP BY channel, utm_campaign
ORDER BY sum(page_views) DESC
"""
_RELEASES = """
SELECT site, release, first_seen, page_views, lcp_p75, inp_p75, cls_p75, cwv_good_pct,
       conversion_rate
FROM rum.release_comparison
WHERE ($1::text IS NULL OR site = $1) AND last_seen > now() - make_interval(days => $2)
ORDER BY site, first_seen DESC
"""


Bin = tuple[float | None, float | None, int]  # (lower, upper, page views); see rum.scorecard_histograms


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


def rating(metric: str, value: float | None) -> str | None:
    if value is None:
        return None
    good, poor = THRESHOLDS[metric]
    return "good" if value <= good else "needs-improvement" if value <= poor else "poor"


def _metric(metric: str, value: float | None) -> Text:
    if value is None:
        return Text("–", style="dim")
    shown = f"{value:.2f}" if metric == "cls" else f"{value:,.0f} ms"
    return Text(shown, style=_STYLE[rating(metric, value) or "good"])


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


async def print_report(database_url: str, *, site: str | None, days: int,
                       console: Console | None = None) -> None:
    console = console or Console()
    conn = await asyncpg.connect(database_url)
    try:
        scorecard = await conn.fetch(_SCORECARD, days, site)
        releases = await conn.fetch(_RELEASES, site, days)
    finally:
        await conn.close()

    title = f"Shared scorecard — {site or 'all sites'}, last {days} days"
    table = Table(title=title, title_justify="left")
    for header in ("channel", "campaign", "page views", "LCP p75", "INP p75", "CLS p75",
                   "good CWV", "conversion", "revenue"):
        table.add_column(header, justify="left" if header in ("channel", "campaign") else "right")
    for row in scorecard:
        table.add_row(row["channel"], row["utm_campaign"], f"{row['page_views']:,}",
                      _metric("lcp", row["lcp"]), _metric("inp", row["inp"]),
                      _metric("cls", row["cls"]), _pct(row["cwv_good"]),
                      _pct(row["conversion_rate"]),
                      "–" if row["revenue"] is None else f"{row['revenue']:,.2f}")
    console.print(table if scorecard else Text(f"{title}: no page views yet.", style="dim"))
    console.print(Text("p75 across groups is a page-view-weighted mean of group p75s; "
                       "query rum.scorecard_daily for exact per-group figures.", style="dim"))

    if releases:
        by_release = Table(title="Releases", title_justify="left")
        for header in ("site", "release", "first seen", "page views", "LCP p75", "INP p75",
                       "CLS p75", "good CWV", "conversion"):
            by_release.add_column(header)
        for row in releases:
            by_release.add_row(row["site"], row["release"], f"{row['first_seen']:%Y-%m-%d %H:%M}",
                               f"{row['page_views']:,}", _metric("lcp", row["lcp_p75"]),
                               _metric("inp", row["inp_p75"]), _metric("cls", row["cls_p75"]),
                               _pct(row["cwv_good_pct"]), _pct(row["conversion_rate"]))
        console.print(by_release)
