"""GET /dashboard: the shared scorecard as one self-contained HTML page.

Reads only the rum views and loads nothing from outside the collector.
"""

from __future__ import annotations

import html

import asyncpg

from collector.report import rating

_QUERY = """
SELECT site, channel, utm_campaign, sum(page_views)::bigint AS page_views,
       max(lcp_p75) AS lcp_p75, max(inp_p75) AS inp_p75, max(cls_p75) AS cls_p75,
       sum(conversion_rate * sessions) / nullif(sum(sessions) FILTER (WHERE conversion_rate IS NOT NULL), 0) AS conversion_rate
FROM rum.scorecard_daily
WHERE day > current_date - 28
GROUP BY site, channel, utm_campaign
ORDER BY site, sum(page_views) DESC
LIMIT 200
"""
_COLOURS = {"good": "#0c6", "needs-improvement": "#fa3", "poor": "#f33", None: "#999"}


def _cell(metric: str, value: float | None) -> str:
    if value is None:
        return "<td>–</td>"
    shown = f"{value:.2f}" if metric == "cls" else f"{value:,.0f} ms"
    return f'<td style="color:{_COLOURS[rating(metric, value)]}">{shown}</td>'


def _row(r: asyncpg.Record) -> str:
    labels = "".join(f"<td>{html.escape(str(r[c]))}</td>"
                     for c in ("site", "channel", "utm_campaign", "page_views"))
    rate = r["conversion_rate"]
    conversion = "–" if rate is None else f"{rate:.1f} %"
    return (f"<tr>{labels}{_cell('lcp', r['lcp_p75'])}{_cell('inp', r['inp_p75'])}"
            f"{_cell('cls', r['cls_p75'])}<td>{conversion}</td></tr>")


async def render_dashboard(pool: asyncpg.Pool) -> str:
    async with pool.acquire() as conn:
        rows = await conn.fetch(_QUERY)
    body = "".join(_row(r) for r in rows)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Binome scorecard</title>
<style>body{{font:14px system-ui,sans-serif;margin:1rem}}table{{border-collapse:collapse}}
td,th{{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:right}}</style></head>
<body><h1>Shared scorecard (last 28 days)</h1><table><tr><th>site</th><th>channel</th>
<th>campaign</th><th>page views</th><th>LCP p75</th><th>INP p75</th><th>CLS p75</th>
<th>conversion</th></tr>{body}</table></body></html>"""
