"""Which share of page views produced each metric, and which browsers produced
none of it (issue 22), from rum.metric_coverage: one reading for `binome report`
and the dashboard, so that nobody over-reads a p75 measured on a few browsers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

METRICS = ("lcp", "inp", "cls", "fcp", "ttfb")
# A browser "does not report" a metric only when it has at least this many page
# views in the period and none of them has the metric: fewer could be chance
# (no interaction, no INP), not the browser.
MIN_PAGE_VIEWS = 20
# Browsers named in one line at most (the busiest first).
MAX_BROWSERS = 3

_SUMS = ", ".join(f"sum(with_{m})::bigint AS {m}" for m in METRICS)
QUERY = f"""
SELECT coalesce(browser, '(unknown)') AS browser, sum(page_views)::bigint AS page_views, {_SUMS}
FROM rum.metric_coverage
WHERE ($1::text IS NULL OR site = $1) AND day BETWEEN $2 AND $3
  AND ($4::text IS NULL OR device_class = $4)
GROUP BY 1
ORDER BY 2 DESC, 1
"""


def summarize(rows: list[Any]) -> dict[str, dict[str, Any]]:
    """Per metric: page views, those with the metric, their share in percent
    (None without page views) and the browsers that reported none of it."""
    total = sum(row["page_views"] for row in rows)
    summary = {}
    for metric in METRICS:
        measured = sum(row[metric] for row in rows)
        missing = [row["browser"] for row in rows
                   if row["page_views"] >= MIN_PAGE_VIEWS and not row[metric]]
        summary[metric] = {
            "page_views": total,
            "measured": measured,
            "pct": 100.0 * measured / total if total else None,
            "missing_browsers": missing[:MAX_BROWSERS],
        }
    return summary


async def fetch_coverage(conn: asyncpg.Connection, *, site: str | None, first_day: dt.date,
                         last_day: dt.date, device_class: str | None = None
                         ) -> dict[str, dict[str, Any]]:
    return summarize(await conn.fetch(QUERY, site, first_day, last_day, device_class))


def coverage_line(metric: str, figures: dict[str, Any]) -> str:
    """"LCP measured on 71 % of page views; Mobile Safari does not report INP"."""
    name = metric.upper()
    if figures["pct"] is None:
        return f"{name}: no page views"
    line = f"{name} measured on {figures['pct']:.0f} % of page views"
    missing = figures["missing_browsers"]
    if missing:
        verb = "does" if len(missing) == 1 else "do"
        line += f"; {', '.join(missing)} {verb} not report {name}"
    return line
