"""Enrichment (collector/enrich.py): URL scrubbing, channels, user agents, days, consent.

Pure unit tests, no database. The privacy rules of CONTRACT sections 4-5 each
have a test that fails if a query value, fragment, referrer path or marketing
field reaches the row.
"""

from __future__ import annotations

import datetime as dt
import string
import time
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.beacon import Beacon, parse_beacon
from collector.enrich import (
    COLUMNS,
    automation_reason,
    classify_referrer,
    page_view_day,
    parse_user_agent,
    scrub_text,
    scrub_url,
    session_pseudonym,
    to_record,
)
from tests.conftest import make_beacon

UTC = dt.UTC
# 2025-11-26T09:40:00.500Z, the contract's example t0.
T0 = 1764150000000.5
RECEIVED = dt.datetime(2025, 11, 26, 10, 0, tzinfo=UTC)

UA = {
    "iphone_safari": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "android_chrome": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "ipad_safari": "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "android_tablet_chrome": "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "android_tablet_firefox": "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 "
    "Firefox/125.0",
    "windows_chrome": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "mac_safari": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "mac_firefox": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 "
    "Firefox/125.0",
    "windows_edge": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "samsung_internet": "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 "
    "(KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "googlebot_smartphone": "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "headless_chrome": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.0.0 Safari/537.36",
}


def _beacon(**overrides: Any) -> Beacon:
    """The contract's example beacon (section 5), validated the way ingest validates it."""
    body = make_beacon(pv="q3Zk9f0aT1xw2bYc", t0=T0, sid="Hc8s0d9f8g7h6j5k")
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return parse_beacon(orjson.dumps(body))


def _row(beacon: Beacon, user_agent: str = UA["iphone_safari"],
         country: str | None = "FR") -> dict[str, Any]:
    record = to_record(beacon, RECEIVED, user_agent, country)
    assert len(record) == len(COLUMNS)
    return dict(zip(COLUMNS, record, strict=True))


def _row_text(row: dict[str, Any]) -> str:
    """Every value of a row as one string, JSON columns decoded, to search for leaks."""
    parts = []
    for value in row.values():
        parts.append(str(value))
        if isinstance(value, str) and value[:1] in "[{":
            parts.append(str(orjson.loads(value)))
    return "\n".join(parts)


# --- scrub_url --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("url", "path", "utm"),
    [
        ("https://shop.example/p/42", "/p/42", {}),
        ("https://shop.example", "/", {}),
        ("https://shop.example?utm_source=x", "/", {"utm_source": "x"}),
        ("https://shop.example/", "/", {}),
        ("https://shop.example/a/b/?token=abc", "/a/b/", {}),
        ("https://shop.example/account?email=x@y.fr&utm_medium=email", "/account",
         {"utm_medium": "email"}),
        ("https://shop.example/cb#access_token=s3cr3t&state=1", "/cb", {}),
        ("https://shop.example/cb?utm_campaign=bf#access_token=s3cr3t", "/cb",
         {"utm_campaign": "bf"}),
        # a '?' inside the fragment is still the fragment
        ("https://shop.example/p#section?utm_source=frag", "/p", {}),
        (("https://shop.example/p/42?utm_source=newsletter&utm_medium=email"
          "&utm_campaign=black-friday&utm_term=shoes&utm_content=hero"),
         "/p/42", {"utm_source": "newsletter", "utm_medium": "email",
                   "utm_campaign": "black-friday", "utm_term": "shoes", "utm_content": "hero"}),
        # URL-decoded, '+' is a space, case kept, whitespace stripped
        ("https://shop.example/?utm_campaign=Black%20Friday+2025&utm_source=%C3%A9t%C3%A9",
         "/", {"utm_campaign": "Black Friday 2025", "utm_source": "été"}),
        ("https://shop.example/?utm_campaign=%20%20Spring%09", "/", {"utm_campaign": "Spring"}),
        # empty or blank values are absent
        ("https://shop.example/?utm_source=&utm_medium=%20&utm_term", "/", {}),
        # the first non-empty value of a repeated parameter wins
        ("https://shop.example/?utm_source=&utm_source=a&utm_source=b", "/", {"utm_source": "a"}),
        # parameter names are matched case-insensitively, also percent-encoded
        ("https://shop.example/?UTM_Source=Mail&utm%5Fmedium=email", "/",
         {"utm_source": "Mail", "utm_medium": "email"}),
        # NUL cannot be stored in PostgreSQL text
        ("https://shop.example/?utm_term=a%00b", "/", {"utm_term": "ab"}),
        # look-alike names are not utm parameters
        ("https://shop.example/?utm_sourcex=1&xutm_source=2&utm_id=3", "/", {}),
        # percent-encoding of the path is kept as sent
        ("https://shop.example/caf%C3%A9/x%20y?q=1", "/caf%C3%A9/x%20y", {}),
        # userinfo and port are part of the authority, not of the path
        ("https://user:pw@shop.example:8443/p?x=1", "/p", {}),
        # path parameters carry session ids like the query does
        ("https://shop.example/cart;jsessionid=ABC123?x=1", "/cart", {}),
        ("https://shop.example/a;x=1/b;y=2", "/a/b", {}),
        ("HTTP://Shop.Example/Case/Kept", "/Case/Kept", {}),
    ],
)
def test_scrub_url(url: str, path: str, utm: dict[str, str]) -> None:
    assert scrub_url(url) == (path, utm)


def test_scrub_url_caps_utm_values_at_256_chars() -> None:
    _, utm = scrub_url("https://shop.example/?utm_campaign=" + "C" * 300)
    assert utm == {"utm_campaign": "C" * 256}


# --- channel and ref_origin -------------------------------------------------------------

PAGE = "https://shop.example/p/42"


@pytest.mark.parametrize(
    ("ref", "page_url", "utm", "click_ids", "channel"),
    [
        # paid: medium (case-insensitive) or a paid click id, before everything else
        ("https://www.google.com/", PAGE, {"utm_medium": "cpc"}, (), "paid"),
        (None, PAGE, {"utm_medium": "CPC"}, (), "paid"),
        (None, PAGE, {"utm_medium": "paid-social"}, (), "paid"),
        (None, PAGE, {"utm_medium": "display"}, (), "paid"),
        ("https://www.google.com/", PAGE, {}, ("gclid",), "paid"),
        (None, PAGE, {}, ("msclkid",), "paid"),
        ("https://www.facebook.com/", PAGE, {}, ("wbraid", "fbclid"), "paid"),
        # email by medium, even from a search referrer
        ("https://www.google.com/", PAGE, {"utm_medium": "Newsletter"}, (), "email"),
        (None, PAGE, {"utm_medium": "e-mail", "utm_source": "facebook"}, (), "email"),
        # social by medium
        (None, PAGE, {"utm_medium": "social-media"}, (), "social"),
        ("https://www.google.com/", PAGE, {"utm_medium": "sm"}, (), "social"),
        # direct: no referrer, no campaign
        (None, PAGE, {}, (), "direct"),
        ("", PAGE, {}, (), "direct"),
        ("   ", PAGE, {}, (), "direct"),
        ("not a url", PAGE, {}, (), "direct"),
        # internal: same host, www. ignored, port ignored
        ("https://shop.example/cart", PAGE, {}, (), "internal"),
        ("https://www.shop.example/", PAGE, {}, (), "internal"),
        ("https://shop.example/", "https://www.shop.example/p", {}, (), "internal"),
        ("http://shop.example:8080/x", "https://shop.example/p", {}, (), "internal"),
        ("https://www.google.com/", "https://www.google.com/maps", {}, (), "internal"),
        # search engines
        ("https://www.google.com/", PAGE, {}, (), "search"),
        ("https://www.google.fr/", PAGE, {}, (), "search"),
        ("https://www.google.co.uk/", PAGE, {}, (), "search"),
        ("https://www.google.com.br/", PAGE, {}, (), "search"),
        ("https://www.bing.com/search?q=shoes", PAGE, {}, (), "search"),
        ("https://cn.bing.com/", PAGE, {}, (), "search"),
        ("https://duckduckgo.com/", PAGE, {}, (), "search"),
        ("https://fr.search.yahoo.com/", PAGE, {}, (), "search"),
        ("https://www.qwant.com/?q=x", PAGE, {}, (), "search"),
        ("https://www.ecosia.org/search?q=x", PAGE, {}, (), "search"),
        ("https://yandex.ru/search/", PAGE, {}, (), "search"),
        ("https://www.baidu.com/", PAGE, {}, (), "search"),
        ("https://www.startpage.com/", PAGE, {}, (), "search"),
        ("https://search.brave.com/search?q=x", PAGE, {}, (), "search"),
        ("https://search.lilo.org/", PAGE, {}, (), "search"),
        ("android-app://com.google.android.googlequicksearchbox/", PAGE, {}, (), "search"),
        # search wins over fbclid (rule order)
        ("https://www.google.com/", PAGE, {}, ("fbclid",), "search"),
        # social networks
        ("https://www.facebook.com/", PAGE, {}, (), "social"),
        ("https://m.facebook.com/", PAGE, {}, (), "social"),
        ("https://l.facebook.com/l.php?u=x", PAGE, {}, (), "social"),
        ("https://lm.facebook.com/", PAGE, {}, (), "social"),
        ("https://www.instagram.com/", PAGE, {}, (), "social"),
        ("https://t.co/abc", PAGE, {}, (), "social"),
        ("https://x.com/someone", PAGE, {}, (), "social"),
        ("https://www.linkedin.com/feed/", PAGE, {}, (), "social"),
        ("https://lnkd.in/xyz", PAGE, {}, (), "social"),
        ("https://www.pinterest.fr/", PAGE, {}, (), "social"),
        ("https://old.reddit.com/r/x", PAGE, {}, (), "social"),
        ("https://www.youtube.com/", PAGE, {}, (), "social"),
        ("https://www.tiktok.com/", PAGE, {}, (), "social"),
        ("https://www.threads.net/", PAGE, {}, (), "social"),
        ("https://bsky.app/profile/x", PAGE, {}, (), "social"),
        ("https://mastodon.social/@x", PAGE, {}, (), "social"),
        ("https://web.whatsapp.com/", PAGE, {}, (), "social"),
        ("android-app://com.linkedin.android/", PAGE, {}, (), "social"),
        # fbclid: social with an unknown referrer or none at all
        ("https://blog.example/", PAGE, {}, ("fbclid",), "social"),
        (None, PAGE, {}, ("fbclid",), "social"),
        # webmails, the most specific host wins over google.*
        ("https://mail.google.com/", PAGE, {}, (), "email"),
        ("https://outlook.live.com/", PAGE, {}, (), "email"),
        ("https://outlook.office.com/mail/", PAGE, {}, (), "email"),
        ("https://fr.mail.yahoo.com/", PAGE, {}, (), "email"),
        ("https://webmail.free.fr/", PAGE, {}, (), "email"),
        ("https://mail.proton.me/u/0/inbox", PAGE, {}, (), "email"),
        ("android-app://com.google.android.gm/", PAGE, {}, (), "email"),
        # utm_source without a referrer: its name through the same lists
        (None, PAGE, {"utm_source": "google"}, (), "search"),
        (None, PAGE, {"utm_source": "Facebook"}, (), "social"),
        (None, PAGE, {"utm_source": "www.linkedin.com"}, (), "social"),
        (None, PAGE, {"utm_source": "bing.com"}, (), "search"),
        (None, PAGE, {"utm_source": "partner-blog"}, (), "referral"),
        (None, PAGE, {"utm_campaign": "spring"}, (), "referral"),
        # with a referrer, utm_source is not consulted
        ("https://blog.example/", PAGE, {"utm_source": "google"}, (), "referral"),
        # everything else
        ("https://blog.example/post", PAGE, {}, (), "referral"),
        ("https://docs.google.com/document/d/1", PAGE, {}, (), "referral"),
        ("https://news.google.com/", PAGE, {}, (), "referral"),
        ("https://notfacebook.com/", PAGE, {}, (), "referral"),
        ("https://shop.example.evil.com/", PAGE, {}, (), "referral"),
        ("https://google.co.uk.evil.example/", PAGE, {}, (), "referral"),
        ("https://www.google.evil.example/", PAGE, {}, (), "referral"),
        ("https://example.com/", "https://shop.example.com/", {}, (), "referral"),
    ],
)
def test_channel(ref: str | None, page_url: str, utm: dict[str, str], click_ids: tuple[str, ...],
                 channel: str) -> None:
    assert classify_referrer(ref, page_url, utm, frozenset(click_ids))[1] == channel


@pytest.mark.parametrize(
    ("ref", "origin"),
    [
        ("https://www.google.com/", "https://www.google.com"),
        ("https://www.google.com", "https://www.google.com"),
        ("https://blog.example/post/1?email=x@y.fr#frag", "https://blog.example"),
        ("https://blog.example?token=abc", "https://blog.example"),
        ("https://blog.example#access_token=abc", "https://blog.example"),
        ("HTTPS://Blog.Example/Path", "https://blog.example"),
        ("http://blog.example:8080/x", "http://blog.example:8080"),
        ("https://blog.example:443/x", "https://blog.example"),
        ("http://blog.example:80/x", "http://blog.example"),
        ("https://user:secret@blog.example/x", "https://blog.example"),
        ("https://[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443"),
        ("  https://blog.example/  ", "https://blog.example"),
        ("android-app://com.google.android.gm/", "android-app://com.google.android.gm"),
        (None, None),
        ("", None),
        ("not a url", None),
        ("javascript:alert(1)", None),
        ("ftp://files.example/x", None),
        ("https:///path-only", None),
        ("https://bad host.example/", None),
        ("https://blog.example:99999/", None),
        ("https://blog.example:80a/", None),
        ("https://[::1/", None),
    ],
)
def test_ref_origin(ref: str | None, origin: str | None) -> None:
    assert classify_referrer(ref, PAGE, {}, frozenset())[0] == origin


# --- user agents ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "device_class", "browser", "os"),
    [
        ("iphone_safari", "mobile", "Mobile Safari", "iOS"),
        ("android_chrome", "mobile", "Chrome Mobile", "Android"),
        ("ipad_safari", "tablet", "Mobile Safari", "iOS"),
        ("android_tablet_chrome", "tablet", "Chrome", "Android"),
        ("android_tablet_firefox", "tablet", "Firefox Mobile", "Android"),
        ("windows_chrome", "desktop", "Chrome", "Windows"),
        ("mac_safari", "desktop", "Safari", "Mac OS X"),
        ("mac_firefox", "desktop", "Firefox", "Mac OS X"),
        ("windows_edge", "desktop", "Edge", "Windows"),
        ("samsung_internet", "mobile", "Samsung Internet", "Android"),
        ("googlebot", "bot", "Googlebot", None),
        ("googlebot_smartphone", "bot", "Googlebot", "Android"),
        ("headless_chrome", "bot", "HeadlessChrome", "Linux"),
    ],
)
def test_parse_user_agent(name: str, device_class: str, browser: str, os: str | None) -> None:
    assert parse_user_agent(UA[name]) == (device_class, browser, os)


@pytest.mark.parametrize("ua", ["", "   ", "zzz", "x" * 5000])
def test_parse_user_agent_unknown(ua: str) -> None:
    assert parse_user_agent(ua) == ("unknown", None, None)


# --- page_view_day ----------------------------------------------------------------------

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


# --- to_record --------------------------------------------------------------------------

def test_columns_match_the_storage_table() -> None:
    # sql/migrations/0001_storage.sql, binome.beacons, in table order
    assert COLUMNS == (
        "site", "day", "pv", "seq", "sid", "received_at", "t0", "consent", "path",
        "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
        "ref_origin", "channel", "release", "dims", "device_class", "browser", "os", "country",
        "device", "nav", "lcp", "inp", "cls", "fcp", "ttfb", "metrics", "events",
        "event_count", "revenue",
    )


def test_to_record_marketing_keeps_everything() -> None:
    row = _row(_beacon())
    assert row["site"] == "demo"
    assert row["day"] == dt.date(2025, 11, 26)
    assert row["pv"] == "q3Zk9f0aT1xw2bYc"
    assert row["seq"] == 0
    assert row["sid"] == session_pseudonym("demo", dt.date(2025, 11, 26), "Hc8s0d9f8g7h6j5k")
    assert row["received_at"] is RECEIVED
    assert row["t0"] == dt.datetime(2025, 11, 26, 9, 40, 0, 500, tzinfo=UTC)
    assert row["t0"].tzinfo is not None
    assert row["consent"] == "marketing"
    assert row["path"] == "/p/42"
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == (
        "newsletter", "email", "black-friday")
    assert row["utm_term"] is None and row["utm_content"] is None
    assert row["ref_origin"] == "https://www.google.com"
    assert row["channel"] == "email"  # utm_medium=email beats the google referrer
    assert row["release"] == "2026.11.3"
    assert orjson.loads(row["dims"]) == {"page_type": "product", "ab_variant": "B"}
    assert (row["device_class"], row["browser"], row["os"]) == ("mobile", "Mobile Safari", "iOS")
    assert row["country"] == "FR"
    assert orjson.loads(row["device"]) == {"vw": 390, "vh": 844, "dpr": 3, "mem": 4, "cpus": 8,
                                           "ect": "4g", "rtt": 50, "downlink": 10,
                                           "save_data": False}
    assert orjson.loads(row["nav"])["transfer_size"] == 48213
    assert (row["lcp"], row["inp"], row["cls"], row["fcp"], row["ttfb"]) == (
        2140.5, None, 0.04, None, None)
    assert orjson.loads(row["metrics"]) == [
        {"name": "LCP", "value": 2140.5, "id": "v5-1764150000000-1234", "delta": 2140.5,
         "rating": "good", "navigationType": "navigate", "attribution": {"target": "img.hero"}},
        {"name": "CLS", "value": 0.04, "id": "v5-1764150000000-5678", "delta": 0.04},
    ]
    assert orjson.loads(row["events"]) == [{"name": "purchase", "value": 49.9, "currency": "EUR"}]
    assert row["event_count"] == 1
    assert row["revenue"] == Decimal("49.9")


def test_to_record_json_columns_are_json_text() -> None:
    # asyncpg COPYs str into jsonb; a dict or list would need a codec the writer lacks.
    row = _row(_beacon())
    for column in ("dims", "device", "nav", "metrics", "events"):
        assert isinstance(row[column], str), column
        orjson.loads(row[column])


def test_to_record_performance_strips_everything_marketing() -> None:
    beacon = _beacon(
        consent="performance",
        url="https://shop.example/p/42?utm_source=newsletter&utm_medium=cpc"
            "&utm_campaign=black-friday&utm_term=t&utm_content=c&gclid=G1&fbclid=F1",
        ref="https://www.facebook.com/some/post",
        dims={"page_type": "product", "ab_variant": "B", "segment": "vip"},
        events=[{"name": "purchase", "value": 49.9, "currency": "EUR"}, {"name": "signup"}],
    )
    row = _row(beacon)
    assert row["consent"] == "performance"
    for column in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
                   "ref_origin", "channel", "events", "revenue"):
        assert row[column] is None, column
    assert row["event_count"] == 0
    assert orjson.loads(row["dims"]) == {"page_type": "product"}
    text = _row_text(row)
    for leaked in ("newsletter", "black-friday", "facebook", "ab_variant", "vip", "purchase",
                   "signup", "49.9", "G1", "F1"):
        assert leaked not in text, leaked
    # what performance measurement needs is still there
    assert row["path"] == "/p/42"
    assert row["release"] == "2026.11.3"
    assert row["lcp"] == 2140.5
    assert row["device_class"] == "mobile"
    assert row["device"] is not None and row["nav"] is not None and row["metrics"] is not None


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        ({"ab_variant": "B"}, None),
        ({}, None),
        ({"page_type": "home"}, {"page_type": "home"}),
    ],
)
def test_to_record_performance_dims(dims: dict[str, str],
                                    expected: dict[str, str] | None) -> None:
    row = _row(_beacon(consent="performance", dims=dims))
    assert (orjson.loads(row["dims"]) if row["dims"] is not None else None) == expected


def test_to_record_consent_absent_means_marketing() -> None:
    row = _row(_beacon(consent=None))
    assert row["consent"] == "marketing"
    assert row["utm_campaign"] == "black-friday"
    assert row["event_count"] == 1


def test_to_record_never_stores_query_or_fragment_secrets() -> None:
    beacon = _beacon(
        url="https://shop.example/reset?token=abc123tok&email=jane.doe%40mail.fr"
            "&utm_source=mailer#access_token=frag456tok",
        ref="https://partner.example/inbox?email=jane.doe@mail.fr&sid=refsecret789",
    )
    row = _row(beacon)
    assert row["path"] == "/reset"
    assert row["utm_source"] == "mailer"
    assert row["ref_origin"] == "https://partner.example"
    text = _row_text(row)
    for secret in ("abc123tok", "jane.doe", "mail.fr", "frag456tok", "access_token", "token=",
                   "refsecret789", "inbox"):
        assert secret not in text, secret


def test_to_record_click_ids_pick_the_channel_and_are_dropped() -> None:
    row = _row(_beacon(url="https://shop.example/p?gclid=Cj0KCQclickid", ref=None))
    assert row["channel"] == "paid"
    assert "Cj0KCQclickid" not in _row_text(row)


def test_to_record_metric_attribution_urls_lose_their_query() -> None:
    metric = {"name": "LCP", "value": 1200.0, "attribution": {
        "url": "https://cdn.example/hero.jpg?sig=signedsecret#x", "target": "img.hero"}}
    row = _row(_beacon(metrics=[metric]))
    assert orjson.loads(row["metrics"])[0]["attribution"] == {
        "url": "https://cdn.example/hero.jpg", "target": "img.hero"}


def test_to_record_last_report_of_a_metric_wins() -> None:
    metrics = [
        {"name": "LCP", "value": 1000.0}, {"name": "INP", "value": 80.0},
        {"name": "LCP", "value": 2500.0}, {"name": "FCP", "value": 900.0},
        {"name": "TTFB", "value": 210.0}, {"name": "CLS", "value": 0.0},
    ]
    row = _row(_beacon(metrics=metrics))
    assert (row["lcp"], row["inp"], row["cls"], row["fcp"], row["ttfb"]) == (
        2500.0, 80.0, 0.0, 900.0, 210.0)
    assert len(orjson.loads(row["metrics"])) == 6


@pytest.mark.parametrize(
    ("events", "count", "revenue"),
    [
        ([], 0, None),
        ([{"name": "signup"}], 1, None),
        ([{"name": "purchase", "value": 49.9}, {"name": "purchase", "value": 10.1},
          {"name": "signup"}], 3, Decimal("60.0")),
        ([{"name": "free", "value": 0}], 1, Decimal(0)),
    ],
)
def test_to_record_events_and_revenue(events: list[dict[str, Any]], count: int,
                                      revenue: Decimal | None) -> None:
    row = _row(_beacon(events=events))
    assert row["event_count"] == count
    assert row["revenue"] == revenue
    assert (row["events"] is None) == (count == 0)


def test_to_record_optional_fields_absent() -> None:
    row = _row(_beacon(t0=None, sid=None, ref=None, release=None, dims={}, device=None,
                       nav=None, metrics=[], events=[]), user_agent="", country=None)
    assert row["t0"] is None and row["sid"] is None
    assert row["day"] == dt.date(2025, 11, 26)
    for column in ("release", "dims", "device", "nav", "metrics", "events", "ref_origin",
                   "lcp", "revenue", "country", "browser", "os"):
        assert row[column] is None, column
    assert row["device_class"] == "unknown"
    assert row["channel"] == "email"  # utm_medium=email still classifies without a referrer


def test_to_record_empty_device_is_null() -> None:
    row = _row(_beacon(device={}, nav={}))
    assert row["device"] is None and row["nav"] is None


# --- property: no non-utm query value survives ------------------------------------------

_KEYS = st.text(alphabet=string.ascii_letters + string.digits + "_-.[]", min_size=1,
                max_size=12).filter(lambda key: not key.lower().startswith("utm_"))
_VALUES = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
                  min_size=1, max_size=16)
# Prefixed so a value cannot match text the row legitimately holds ("e", "/p").
_MARK = "Qz7"


@settings(max_examples=300, deadline=None)
@given(
    params=st.lists(st.tuples(_KEYS, _VALUES), min_size=1, max_size=6),
    fragment=st.one_of(st.none(), _VALUES),
    utm_campaign=st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1,
                         max_size=20).filter(lambda campaign: _MARK not in campaign),
)
def test_no_query_value_but_utm_reaches_the_record(
    params: list[tuple[str, str]], fragment: str | None, utm_campaign: str
) -> None:
    pairs = [f"{quote(key, safe='')}={quote(_MARK + value, safe='')}" for key, value in params]
    pairs.insert(len(pairs) // 2, f"utm_campaign={utm_campaign}")
    url = "https://shop.example/p/42?" + "&".join(pairs)
    if fragment is not None:
        url += "#" + quote(_MARK + "frag" + fragment, safe="=&")
    row = _row(_beacon(url=url, ref=url))
    assert row["utm_campaign"] == scrub_text(utm_campaign)
    assert row["path"] == "/p/42"
    # Every value and the fragment carry the marker, encoded or decoded alike.
    assert _MARK not in _row_text(row)


# --- personal data in paths, campaign values and dimensions ------------------------------

@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        # kept: what analysts group by
        ("/p/42", "/p/42"),
        ("/2025/11/26/lcp-explained", "/2025/11/26/lcp-explained"),
        ("/blog/how-to-improve-lcp-in-2025", "/blog/how-to-improve-lcp-in-2025"),
        ("/black-friday-2025-summer-sale", "/black-friday-2025-summer-sale"),
        ("/c/galaxys24ultra-256gb-black", "/c/galaxys24ultra-256gb-black"),
        ("/p/order-12345", "/p/order-12345"),
        ("/wiki/United_States_Declaration_of_Independence",
         "/wiki/United_States_Declaration_of_Independence"),
        ("/TheQuickBrownFox2025", "/TheQuickBrownFox2025"),
        ("black-friday", "black-friday"),
        # e-mails, raw or percent-encoded
        ("/account/jean.dupont@example.fr/orders", "/account/:email/orders"),
        ("/u/jean.dupont%40example.fr", "/u/:email"),
        ("/u/Jean-Luc.O'Neil+promo@mail.example.co.uk", "/u/Jean-Luc.O':email"),
        ("newsletter-jane@doe.example", ":email"),
        # ids: UUIDs and runs of 6 digits or more
        ("/orders/100234567", "/orders/:id"),
        ("/o/123e4567-e89b-12d3-a456-426614174000/x", "/o/:id/x"),
        ("/tel/+33612345678", "/tel/+:id"),
        ("contact-00123456", "contact-:id"),
        ("GA1.2.1234567890.1764150000", "GA1.2.:id.:id"),
        # tokens: hex, base32/36, base64(url), JWTs; CRM ids in utm_* values
        ("/reset/9f86d081884c7d659a2feaa0c55ad015", "/reset/:token"),
        ("/reset-password-9f86d081884c7d659a2feaa0c55ad015", "/reset-password-:token"),
        ("/s/aZ3_x9-Kq8LmN2pQ4rS7tU", "/s/:token"),
        ("/t/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0",
         "/t/:token.:token.:token"),
        ("crm-0035g00000XyZab1AAA", ":token"),  # short words beside a token go with it
        ("/i/k3j5h6g7f8d9s0a1q2w3", "/i/:token"),
    ],
)
def test_scrub_text(text: str, scrubbed: str) -> None:
    assert scrub_text(text) == scrubbed


def test_scrub_text_catches_most_random_tokens() -> None:
    import random

    rng = random.Random(6)
    alphabets = {
        "hex": string.hexdigits[:16], "base32": string.digits + "abcdefghijklmnopqrstuv",
        "base36": string.digits + string.ascii_lowercase,
        "base64url": string.ascii_letters + string.digits + "-_",
    }
    for name, alphabet in alphabets.items():
        for length, share in ((16, 0.85), (32, 0.95)):
            tokens = ["".join(rng.choice(alphabet) for _ in range(length)) for _ in range(500)]
            caught = sum(scrub_text("/x/" + token) != "/x/" + token for token in tokens)
            assert caught / len(tokens) >= share, (name, length, caught)


def test_personal_data_is_scrubbed_from_path_utm_and_dims() -> None:
    beacon = _beacon(
        url="https://shop.example/account/jean.dupont%40example.fr/orders/100234567"
            "?utm_source=crm&utm_content=contact-00123456&utm_term=jane%40doe.example"
            "&utm_campaign=spring-2026",
        dims={"page_type": "account", "customer": "cus_9f86d081884c7d659a2f"},
        metrics=[{"name": "LCP", "value": 900, "attribution": {
            "url": "https://cdn.example/u/9f86d081884c7d659a2feaa0c55ad015/avatar.png?sig=x"}}],
    )
    row = _row(beacon)
    assert row["path"] == "/account/:email/orders/:id"
    assert row["utm_content"] == "contact-:id"
    assert row["utm_term"] == ":email"
    assert row["utm_campaign"] == "spring-2026" and row["utm_source"] == "crm"
    assert orjson.loads(row["dims"]) == {"page_type": "account", "customer": ":token"}
    assert orjson.loads(row["metrics"])[0]["attribution"]["url"] == (
        "https://cdn.example/u/:token/avatar.png")
    text = _row_text(row)
    for secret in ("jean.dupont", "100234567", "00123456", "jane", "9f86d0818"):
        assert secret not in text, secret


def test_scrubbing_a_path_is_cheap() -> None:
    """The hot path: a path with nothing suspect costs one regex search; a
    suspect one is worked out once and then cached."""
    clean = "/blog/lcp-explained/part-2"
    started = time.perf_counter()
    for _ in range(100_000):
        scrub_text(clean)
    assert time.perf_counter() - started < 0.5
    suspect = "/account/jean.dupont@example.fr/orders/100234567"
    scrub_text(suspect)
    started = time.perf_counter()
    for _ in range(100_000):
        scrub_text(suspect)
    assert time.perf_counter() - started < 0.5


# --- bots, crawlers, headless browsers --------------------------------------------------

@pytest.mark.parametrize(
    ("ua", "reason"),
    [
        ("", "no_user_agent"),
        ("   ", "no_user_agent"),
        (UA["headless_chrome"], "headless"),
        (("Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
         "PhantomJS/2.1.1 Safari/538.1"), "headless"),
        (("Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, "
         "like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse"), "headless"),
        (UA["googlebot"], "bot"),
        (UA["googlebot_smartphone"], "bot"),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot"),
        (("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
         "+https://openai.com/gptbot)"), "bot"),
        (("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
         "+claudebot@anthropic.com)"), "bot"),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "bot"),
        ("Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "bot"),
        ("curl/8.5.0", "bot"),
        ("python-requests/2.32.3", "bot"),
        ("python-httpx/0.28.1", "bot"),
        ("Go-http-client/1.1", "bot"),
        ("Wget/1.21.4", "bot"),
        ("axios/1.7.2", "bot"),
        (UA["iphone_safari"], None),
        (UA["windows_chrome"], None),
        (UA["samsung_internet"], None),
        (UA["mac_firefox"], None),
        (UA["windows_edge"], None),
        ("zzz", None),  # unknown, not known to be automated: stored as device 'unknown'
    ],
)
def test_automation_reason(ua: str, reason: str | None) -> None:
    assert automation_reason(ua) == reason


# --- session ids that cannot be linked across days --------------------------------------

def test_session_pseudonym_changes_with_the_day_and_site() -> None:
    day = dt.date(2025, 11, 26)
    sid = "Hc8s0d9f8g7h6j5k"
    same = session_pseudonym("demo", day, sid)
    assert same == session_pseudonym("demo", day, sid)
    assert same != sid and len(same) == 16 and set(same) <= set(
        string.ascii_letters + string.digits + "-_")
    assert session_pseudonym("demo", day + dt.timedelta(days=1), sid) != same
    assert session_pseudonym("other", day, sid) != same


def test_a_sessions_page_views_share_the_pseudonym_of_their_day() -> None:
    first = _row(_beacon(pv="pvfirst01", t0=T0))
    later = _row(_beacon(pv="pvlater01", t0=T0 + 3_600_000))
    yesterday = _row(_beacon(pv="pvyesterd", t0=T0 - 86_400_000))
    assert first["sid"] == later["sid"]
    assert yesterday["day"] == dt.date(2025, 11, 25) and yesterday["sid"] != first["sid"]


def test_session_ids_as_sent_when_asked() -> None:
    record = to_record(_beacon(), RECEIVED, UA["iphone_safari"], None, session_per_day=False)
    assert dict(zip(COLUMNS, record, strict=True))["sid"] == "Hc8s0d9f8g7h6j5k"
