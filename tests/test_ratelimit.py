"""The token bucket of collector/ratelimit.py, on its own (the 429 over HTTP is in test_ingest)."""

from __future__ import annotations

import time

import pytest

from collector.ratelimit import PURGE_SLICE, RateLimiter


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


def test_one_ipv6_64_is_one_client() -> None:
    # Rotating addresses inside one /64 (one host's usual allocation) buys nothing.
    limiter = RateLimiter(per_minute=5)
    answers = [limiter.allow(f"2001:db8:1:2::{i:x}") for i in range(1, 1001)]
    assert answers == [True] * 5 + [False] * 995
    assert len(limiter._buckets) == 1
    assert limiter.allow("2001:db8:1:3::1")  # the next /64 is another client


def test_ipv4_mapped_ipv6_is_its_ipv4_address() -> None:
    limiter = RateLimiter(per_minute=2)
    assert limiter.allow("198.51.100.7") and limiter.allow("::ffff:198.51.100.7")
    assert not limiter.allow("198.51.100.7")
    assert limiter.allow("198.51.100.8")  # IPv4 keeps the full address


def test_the_buckets_are_bounded_under_a_flood_of_clients() -> None:
    limiter = RateLimiter(per_minute=5, max_clients=1000)
    for i in range(10_000):
        assert limiter.allow(f"2001:db8:{i >> 16:x}:{i & 0xffff:x}::1")
        assert len(limiter._buckets) <= 1000
    # The most recent clients are remembered, the oldest forgotten.
    assert limiter.allow("2001:db8:0:270f::1") and len(limiter._buckets) == 1000


def test_a_purge_does_bounded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    limiter = RateLimiter(per_minute=60, max_clients=50_000)
    for i in range(50_000):
        limiter.allow(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    clock[0] += 3600.0  # every bucket is idle: all could be forgotten at once
    assert limiter._purge(clock[0]) == PURGE_SLICE
    limiter.allow("203.0.113.1")  # one call forgets one slice, never the whole table
    assert len(limiter._buckets) == 50_000 - 2 * PURGE_SLICE + 1
    # Yet calls forget idle buckets faster than new clients add them.
    for i in range(20_000):
        limiter.allow(f"192.0.{i >> 8 & 255}.{i & 255}")
    assert len(limiter._buckets) < 50_000
