"""The shared indicators: metric names, CrUX's thresholds, the sample-size rule.

Defined once for Python (`binome report`, the dashboard and, through
/dashboard/data, its page); sql/views/01_indicators.sql defines the same for
the views (rum.good_threshold, rum.poor_threshold, rum.too_small), and
tests/test_indicators.py checks that the two agree.
"""

from __future__ import annotations

# The metrics the views report, and the three Core Web Vitals among them.
METRICS = ("lcp", "inp", "cls", "fcp", "ttfb")
CORE_WEB_VITALS = ("lcp", "inp", "cls")

# CrUX's (good, poor): good is <= the first, poor is > the second
# (https://web.dev/articles/vitals, https://web.dev/articles/fcp, https://web.dev/articles/ttfb).
THRESHOLDS: dict[str, tuple[float, float]] = {
    "lcp": (2500, 4000),
    "inp": (200, 500),
    "cls": (0.1, 0.25),
    "fcp": (1800, 3000),
    "ttfb": (800, 1800),
}

# Page views (sessions, in rum.perf_vs_conversion) under which a group is too
# small to read, as GA4 flags its thresholded data.
TOO_SMALL = 50


def rating(metric: str, value: float | None) -> str | None:
    """CrUX's rating of a value: 'good', 'needs-improvement' or 'poor'."""
    if value is None:
        return None
    good, poor = THRESHOLDS[metric]
    return "good" if value <= good else "needs-improvement" if value <= poor else "poor"
