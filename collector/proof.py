"""Proof of gains (issue 21, contract section 7), as GET /dashboard/data and
`binome report` show it: each difference of rum.comparisons with its 95 %
interval and verdict, and rum.speed_worth, "what speed is worth". Both read
the views' rows as they are; the verdicts and intervals are the views'.
The page gets them from ProofCache, which computes them in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

# The differences and what speed is worth are the site's, whatever the page's
# period, device or country (releases over their whole life, fixed windows of
# 7 and 28 days), and they move slowly; rum.comparisons reads the page views
# of the bins that hold its order statistics. So they are computed at most once
# per this many seconds per site, and shared by every filter of the page.
PROOF_CACHE_SECONDS = 300.0
# After a failure (a timeout: a lock, a day too big to compute live) the page
# says the figures are unavailable for this long rather than wait on them.
PROOF_FAILURE_SECONDS = 60.0
# Computations running at once, every site together: the others wait their
# turn (their pages say "being computed") rather than take the connections the
# scorecard's own statements need.
PROOF_COMPUTATIONS = 1
# Answers of a site not asked for in this long are dropped.
FORGET_SECONDS = 3600.0
# What the page gets for the figures while they are computed or after a failure.
UNAVAILABLE: dict[str, Any] = {"comparisons": None, "speed_worth": None}

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
    """The differences and what speed is worth per site, computed in the
    background so that the page never waits for them (issue 21): current()
    answers at once with what is known and starts a computation when nothing
    fresh is. One computation per site at a time, `computations` at once over
    every site (each holds a connection of the dashboard's pool); a result is
    shared for `seconds` after it is done and then served, stale, while the
    next one runs; a failure is logged, answered as unavailable for
    `failure_seconds` (the page stops waiting), then computed again."""

    def __init__(self, compute: Callable[[str], Awaitable[dict[str, Any]]],
                 seconds: float = PROOF_CACHE_SECONDS,
                 failure_seconds: float = PROOF_FAILURE_SECONDS,
                 computations: int = PROOF_COMPUTATIONS) -> None:
        self._compute = compute
        self._seconds = seconds
        self._failure_seconds = failure_seconds
        self._slots = asyncio.Semaphore(computations)
        # site -> (the answer, None when the computation failed; when it was done)
        self._known: dict[str, tuple[dict[str, Any] | None, float]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def current(self, site: str) -> dict[str, Any]:
        """{"proof": {"pending": ...}, "comparisons": ..., "speed_worth": ...}
        as known now: the rows (maybe stale, a newer computation running),
        pending (rows None) while the first is running, or unavailable (rows
        None, not pending) after a failure."""
        known = self._known.get(site)
        now = time.monotonic()
        fresh = known is not None and now - known[1] <= (
            self._seconds if known[0] is not None else self._failure_seconds)
        if not fresh and site not in self._running and not self._closed:
            task = asyncio.create_task(self._run(site))
            self._running[site] = task
            task.add_done_callback(lambda _: self._running.pop(site, None))
        if known is not None and (fresh or known[0] is not None):
            return {"proof": {"pending": False}, **(known[0] or UNAVAILABLE)}
        return {"proof": {"pending": site in self._running}, **UNAVAILABLE}

    async def _run(self, site: str) -> None:
        async with self._slots:
            try:
                answer: dict[str, Any] | None = await self._compute(site)
            except asyncpg.QueryCanceledError:
                log.warning("proof: rum.comparisons or rum.speed_worth took too long",
                            extra={"site": site})
                answer = None
            except Exception as exc:  # logged, never raised: nobody awaits this task
                log.warning("proof: computation failed", extra={"site": site, "error": repr(exc)})
                answer = None
        self._known[site] = (answer, time.monotonic())
        # Sites no longer asked for are forgotten.
        now = time.monotonic()
        for old in [s for s, (_, at) in self._known.items() if now - at > FORGET_SECONDS]:
            del self._known[old]

    async def close(self) -> None:
        """Cancel the computations running (at shutdown, before the pool closes)."""
        self._closed = True
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
