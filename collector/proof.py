"""Proof of gains (issue 21, contract section 7), as GET /dashboard/data and
`binome report` show it: each difference of rum.comparisons with its 95 %
interval and verdict, and rum.speed_worth, "what speed is worth". Both read
the views' rows as they are; the verdicts and intervals are the views'.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg

# The differences and what speed is worth are the site's, whatever the page's
# period, device or country (releases over their whole life, fixed windows of
# 7 and 28 days), and they move slowly; rum.speed_worth reads every page view
# of 28 days. So they are computed at most once per this many seconds per
# site, and shared by every filter of the page.
PROOF_CACHE_SECONDS = 300.0

# Every site's rows when $1 is NULL (`binome report` without --site).
COMPARISONS_QUERY = """
SELECT site, kind, subject, baseline, metric, subject_value, baseline_value, delta,
       delta_low, delta_high, subject_n, baseline_n, verdict
FROM rum.comparisons
WHERE $1::text IS NULL OR site = $1
ORDER BY site, kind, subject, metric
"""

SPEED_WORTH_QUERY = """
SELECT site, scope, scope_value, first_day, last_day, sessions, conversions, revenue,
       fast_sessions, fast_conversions, fast_conversion_rate, slow_sessions, slow_conversions,
       slow_conversion_rate, extra_conversions, extra_conversions_low, extra_conversions_high,
       revenue_per_conversion, extra_revenue, extra_revenue_low, extra_revenue_high, too_small
FROM rum.speed_worth
WHERE $1::text IS NULL OR site = $1
ORDER BY site, scope = 'campaign', scope <> 'site', sessions DESC, scope_value
"""

# rum.comparisons' metrics, in the order the screens show them.
METRICS = ("lcp_p75", "inp_p75", "cls_p75", "cwv_good_pct", "conversion_rate")
# The kinds, in the order the screens show them.
KINDS = ("release", "ab_variant", "period")


def _plain(value: Any) -> Any:
    """numeric as float and dates as ISO text, for JSON."""
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def as_dict(row: asyncpg.Record) -> dict[str, Any]:
    return {name: _plain(value) for name, value in row.items()}


def needed(subject_n: int, baseline_n: int, too_small: int) -> int:
    """Page views (sessions for conversion_rate) a `too few` difference still
    needs: what each side short of the threshold lacks, added up."""
    return sum(max(0, too_small - n) for n in (subject_n, baseline_n))


class ProofCache:
    """compute() per site, once at a time, then shared for `seconds` after it
    is done; a failure is not kept (the next viewer computes again)."""

    def __init__(self, seconds: float = PROOF_CACHE_SECONDS) -> None:
        self._seconds = seconds
        self._tasks: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._done_at: dict[str, float] = {}

    def _stale(self, site: str, now: float) -> bool:
        task = self._tasks[site]
        if not task.done():
            return False
        failed = task.cancelled() or task.exception() is not None
        return failed or now - self._done_at.get(site, now) > self._seconds

    async def get(self, site: str,
                  compute: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        now = time.monotonic()
        for stale in [s for s in self._tasks if self._stale(s, now)]:
            del self._tasks[stale]
            self._done_at.pop(stale, None)
        if site not in self._tasks:
            task = asyncio.ensure_future(compute())
            task.add_done_callback(lambda _: self._done_at.__setitem__(site, time.monotonic()))
            self._tasks[site] = task
        # shield: a viewer who goes away does not cancel the others' answer.
        return await asyncio.shield(self._tasks[site])
