"""The stored row (collector/row.py): its columns and the day it is stored under."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from collector.row import COLUMNS, page_view_day

UTC = dt.UTC
RECEIVED = dt.datetime(2025, 11, 26, 10, 0, tzinfo=UTC)


def test_columns_match_the_storage_table() -> None:
    # sql/migrations/0001_baseline.sql, binome.beacons, in table order, then the
    # columns later migrations add (0006_client_losses.sql)
    assert COLUMNS == (
        "site", "day", "pv", "seq", "sid", "received_at", "t0", "consent", "path",
        "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
        "ref_origin", "channel", "release", "dims", "device_class", "browser", "os", "country",
        "device", "nav", "lcp", "inp", "cls", "fcp", "ttfb", "metrics", "events",
        "event_count", "revenue", "client_losses",
    )


def _ms(when: dt.datetime) -> float:
    return when.timestamp() * 1000


@pytest.mark.parametrize(
    ("t0", "received_at", "day"),
    [
        # inside the window: t0's day
        (_ms(dt.datetime(2025, 11, 26, 9, 0, tzinfo=UTC)), RECEIVED, dt.date(2025, 11, 26)),
        # across midnight: the page view started yesterday, its beacon came just after
        (_ms(dt.datetime(2025, 11, 25, 23, 59, 59, tzinfo=UTC)),
         dt.datetime(2025, 11, 26, 0, 0, 30, tzinfo=UTC), dt.date(2025, 11, 25)),
        # a resend two days late still lands on t0's day
        (_ms(dt.datetime(2025, 11, 24, 10, 0, tzinfo=UTC)), RECEIVED, dt.date(2025, 11, 24)),
        # a client clock a little ahead, across midnight
        (_ms(dt.datetime(2025, 11, 27, 0, 30, tzinfo=UTC)),
         dt.datetime(2025, 11, 26, 23, 50, tzinfo=UTC), dt.date(2025, 11, 27)),
        # too old: the receive day
        (_ms(dt.datetime(2025, 11, 24, 9, 59, tzinfo=UTC)), RECEIVED, dt.date(2025, 11, 26)),
        (_ms(dt.datetime(2001, 1, 1, tzinfo=UTC)), RECEIVED, dt.date(2025, 11, 26)),
        (0.0, RECEIVED, dt.date(2025, 11, 26)),
        # too far ahead: the receive day
        (_ms(dt.datetime(2025, 11, 26, 11, 0, 1, tzinfo=UTC)), RECEIVED, dt.date(2025, 11, 26)),
        (_ms(dt.datetime(2030, 1, 1, tzinfo=UTC)),
         dt.datetime(2025, 11, 26, 23, 50, tzinfo=UTC), dt.date(2025, 11, 26)),
        # no t0
        (None, RECEIVED, dt.date(2025, 11, 26)),
        # the day is UTC's, whatever the zone received_at is expressed in
        (None, dt.datetime(2025, 11, 26, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
         dt.date(2025, 11, 25)),
    ],
)
def test_page_view_day(t0: float | None, received_at: dt.datetime, day: dt.date) -> None:
    assert page_view_day(t0, received_at) == day


def test_page_view_day_reads_a_naive_received_at_as_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under a local zone ahead of UTC, naive 00:30 read as local time would be the day before.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert page_view_day(None, dt.datetime(2025, 11, 26, 0, 30)) == dt.date(2025, 11, 26)
    finally:
        monkeypatch.undo()
        time.tzset()
