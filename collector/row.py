"""The stored row: binome.beacons' columns, in the order enrichment builds a row
and the writer COPYs it, and the day a row is stored under (its partition)."""

from __future__ import annotations

import datetime as dt
from typing import Any

Record = tuple[Any, ...]

COLUMNS: tuple[str, ...] = (
    "site", "day", "pv", "seq", "sid", "received_at", "t0", "consent", "path",
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "ref_origin", "channel", "release", "dims", "device_class", "browser", "os", "country",
    "device", "nav", "lcp", "inp", "cls", "fcp", "ttfb", "metrics", "events", "event_count",
    "revenue", "client_losses",
)

_MS_PER_DAY = 86_400_000
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
# A page view's day comes from the client's t0 only when that clock is plausible:
# a beacon may be resent up to two days later (sendBeacon retries, spooling), but a
# t0 ahead of the collector by more than a small skew is a wrong clock.
T0_MAX_AGE_DAYS = 2  # the writer's resend check looks this many days around a beacon's
_T0_MAX_AGE_MS = T0_MAX_AGE_DAYS * _MS_PER_DAY
_T0_MAX_AHEAD_MS = 3_600_000


def page_view_day(t0_ms: float | None, received_at: dt.datetime) -> dt.date:
    """UTC day of the page view: t0's when t0 is plausible, else the receive day.

    A resent beacon carries the same t0, so it shares the day and therefore the
    partition; a wild client clock cannot create partitions far in the past or
    future.
    """
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=dt.UTC)
    received_ms = received_at.timestamp() * 1000
    if t0_ms is not None and (
        received_ms - _T0_MAX_AGE_MS <= t0_ms <= received_ms + _T0_MAX_AHEAD_MS
    ):
        return dt.date.fromordinal(_EPOCH_ORDINAL + int(t0_ms // _MS_PER_DAY))
    return dt.date.fromordinal(_EPOCH_ORDINAL + int(received_ms // _MS_PER_DAY))
