"""The token bucket of collector/ratelimit.py, on its own (the 429 over HTTP is in test_ingest)."""

from __future__ import annotations

import time

import pytest

from collector.ratelimit import RateLimiter


def test_burst_up_to_the_limit_then_refused() -> None:
    limiter = RateLimiter(per_minute=5)
    assert [limiter.allow("198.51.100.7") for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.allow("198.51.100.8")  # another client has its own bucket


def test_tokens_come_back_over_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    limiter = RateLimiter(per_minute=60)  # one a second
    assert all(limiter.allow("a") for _ in range(60))
    assert not limiter.allow("a")
    clock[0] += 2.0
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]


def test_zero_turns_it_off() -> None:
    limiter = RateLimiter(per_minute=0)
    assert all(limiter.allow("a") for _ in range(10_000))


def test_addresses_are_not_kept() -> None:
    limiter = RateLimiter(per_minute=10)
    limiter.allow("203.0.113.50")
    # A 64-bit keyed hash, not the address; two limiters (two starts) disagree on it.
    assert all(isinstance(key, int) and key.bit_length() <= 64 for key in limiter._buckets)
    other = RateLimiter(per_minute=10)
    other.allow("203.0.113.50")
    assert set(other._buckets).isdisjoint(limiter._buckets)
