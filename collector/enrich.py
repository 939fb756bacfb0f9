"""Enrichment: a validated Beacon becomes one row of binome.beacons.

This is where CONTRACT sections 4-6 are enforced before anything is stored:
the page URL keeps its path and the five utm_* values only, the referrer keeps
its origin only, and at the `performance` consent level nothing that measures
campaigns, acquisition, cohorts or conversions survives (CNIL guidance of
4 July 2025, see CONTRACT section 4).

Personal data that hides in what is kept (an e-mail in a path, a CRM id in a
utm_content) is replaced by placeholders: see scrub_text.

It runs once per accepted beacon on the event loop, so it sticks to str methods
where it can, runs its few precompiled regexes only when a cheap pre-check
hits, caches what repeats (paths, user agents, referrer hosts) and never logs.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote_plus

import msgspec
import orjson
import ua_parser
from crawleruseragents import is_crawler  # type: ignore[import-untyped]
from pydantic import BaseModel, TypeAdapter

from collector.beacon import Beacon, Metric
from collector.beacon_decoder import Beacon as FastBeacon
from collector.beacon_decoder import Metric as FastMetric

COLUMNS: tuple[str, ...] = (
    "site", "day", "pv", "seq", "sid", "received_at", "t0", "consent", "path",
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "ref_origin", "channel", "release", "dims", "device_class", "browser", "os", "country",
    "device", "nav", "lcp", "inp", "cls", "fcp", "ttfb", "metrics", "events", "event_count",
    "revenue",
)

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_UTM_KEY_SET = frozenset(UTM_KEYS)
_UTM_MAX_CHARS = 256

# Click ids the ad platforms append to landing URLs. They are only read to pick
# the channel, never stored. fbclid is added by Facebook to every outbound link,
# organic posts included, so it says "social", not "paid".
PAID_CLICK_IDS = frozenset({"gclid", "gbraid", "wbraid", "msclkid", "dclid"})
SOCIAL_CLICK_IDS = frozenset({"fbclid"})
_CLICK_IDS = PAID_CLICK_IDS | SOCIAL_CLICK_IDS

# utm_medium values, compared lower-cased. Narrower than GA4's default channel
# group regexes on purpose: a short explicit list is predictable for analysts.
PAID_MEDIUMS = frozenset({
    "cpc", "ppc", "paid", "paidsearch", "paid_search", "paid-search", "cpm", "cpv", "display",
    "paid_social", "paid-social",
})
EMAIL_MEDIUMS = frozenset({"email", "e-mail", "e_mail", "newsletter"})
SOCIAL_MEDIUMS = frozenset({"social", "social-network", "social-media", "sm", "social_network"})

# Referrer hosts by kind. Drawn from GA4's default channel group source lists
# ("[GA4] Default channel group", source categories) and Matomo's
# matomo-org/searchengine-and-social-list, trimmed to the engines and networks
# that send traffic to European sites, plus the French webmails. A listed host
# also matches its subdomains (facebook.com covers m., l. and lm.facebook.com);
# the most specific entry wins, so mail.google.com is email, not search.
SEARCH_HOSTS = frozenset({
    "bing.com", "duckduckgo.com", "search.yahoo.com", "search.yahoo.co.jp", "qwant.com",
    "ecosia.org", "baidu.com", "startpage.com", "search.brave.com", "lilo.org", "ya.ru",
    "search.aol.com", "ask.com", "seznam.cz", "naver.com", "sogou.com", "so.com",
    "mojeek.com", "kagi.com", "search.lycos.com", "metager.org", "swisscows.com",
})
SOCIAL_HOSTS = frozenset({
    "facebook.com", "fb.com", "fb.me", "messenger.com", "instagram.com", "t.co",
    "twitter.com", "x.com", "linkedin.com", "lnkd.in", "reddit.com", "youtube.com", "youtu.be",
    "tiktok.com", "snapchat.com", "threads.net", "threads.com", "bsky.app", "mastodon.social",
    "whatsapp.com", "wa.me", "t.me", "telegram.org", "vk.com", "discord.com", "quora.com",
    "tumblr.com", "tumblr.co",
})
WEBMAIL_HOSTS = frozenset({
    "mail.google.com", "outlook.live.com", "outlook.office.com", "outlook.office365.com",
    "mail.yahoo.com", "mail.proton.me", "mail.protonmail.com", "mail.aol.com", "mail.yandex.ru",
    "mail.zoho.com", "mail.orange.fr", "messagerie.orange.fr", "mail.gmx.com", "gmx.net",
    "navigator-bs.gmx.com", "mail.free.fr", "mail.laposte.net", "mail.sfr.fr",
})
# Brands that search or share under many country domains (google.fr,
# google.co.uk, yahoo.co.jp, pinterest.de): only the bare brand domain matches,
# so docs.google.com stays a referral and mail.google.com stays email.
SEARCH_BRANDS = frozenset({"google", "yahoo", "yandex"})
SOCIAL_BRANDS = frozenset({"pinterest"})
# Any webmail.* host (webmail.free.fr, webmail.sfr.fr ...) is a webmail.
_WEBMAIL_PREFIX = "webmail."
# Android apps appear as android-app://<package>/ referrers (Chrome on Android).
APP_REFERRERS: Mapping[str, str] = {
    "com.google.android.googlequicksearchbox": "search",
    "com.google.android.gm": "email",
    "com.microsoft.office.outlook": "email",
    "com.facebook.katana": "social",
    "com.facebook.orca": "social",
    "com.instagram.android": "social",
    "com.linkedin.android": "social",
    "com.twitter.android": "social",
    "com.reddit.frontpage": "social",
    "com.pinterest": "social",
    "com.google.android.youtube": "social",
    "com.zhiliaoapp.musically": "social",
    "org.telegram.messenger": "social",
    "com.whatsapp": "social",
}
# utm_source names seen without a referrer (utm_source=facebook), compared lower-cased.
SEARCH_SOURCE_NAMES = SEARCH_BRANDS | frozenset({
    "bing", "duckduckgo", "ddg", "qwant", "ecosia", "baidu", "startpage", "brave", "lilo",
    "naver", "seznam", "ask", "kagi",
})
SOCIAL_SOURCE_NAMES = SOCIAL_BRANDS | frozenset({
    "facebook", "fb", "instagram", "ig", "twitter", "x", "linkedin", "reddit", "youtube",
    "tiktok", "snapchat", "threads", "bluesky", "bsky", "mastodon", "whatsapp", "telegram",
    "messenger", "vk", "discord", "tumblr", "quora",
})

_HOST_KINDS: dict[str, str] = {
    **{host: "search" for host in SEARCH_HOSTS},
    **{host: "social" for host in SOCIAL_HOSTS},
    **{host: "email" for host in WEBMAIL_HOSTS},
    **APP_REFERRERS,
}
assert len(_HOST_KINDS) == len(SEARCH_HOSTS) + len(SOCIAL_HOSTS) + len(WEBMAIL_HOSTS) + len(
    APP_REFERRERS
), "a host is listed under two kinds"
# Second-level labels of country domains: google.co.uk, google.com.br, yahoo.co.jp.
_COUNTRY_SECOND_LEVELS = frozenset({"co", "com", "ne", "or", "ac", "org", "net", "gov", "edu"})

# document.referrer is http(s) or empty; Chrome on Android also reports apps.
_REFERRER_SCHEMES = frozenset({"http", "https", "android-app"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_")
_IPV6_CHARS = frozenset("0123456789abcdef:.[]")

# Real user agents stay under 1 KiB; longer ones are cut so junk cannot make the
# cache hold megabytes or the parser scan them.
_UA_MAX_CHARS = 1024

_METRIC_LIST = TypeAdapter(list[Metric])

_MS_PER_DAY = 86_400_000
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
# A page view's day comes from the client's t0 only when that clock is plausible:
# a beacon may be resent up to two days later (sendBeacon retries, spooling), but a
# t0 ahead of the collector by more than a small skew is a wrong clock.
T0_MAX_AGE_DAYS = 2  # the writer's resend check looks this many days around a beacon's
_T0_MAX_AGE_MS = T0_MAX_AGE_DAYS * _MS_PER_DAY
_T0_MAX_AHEAD_MS = 3_600_000


# --- personal data in paths and campaign values ----------------------------------------
# Sites put people's identifiers in URLs (/account/jean.dupont@example.fr,
# /orders/100234567, /reset/9f86d081884c7d659a2feaa0c55ad015) and CRMs put them in
# campaign tags (utm_content=contact-00123456). Stored, they would make a row
# traceable to a person, which neither consent level allows (docs/privacy.md).
# Each match is replaced by a placeholder, rules applied in this order:
#   :email  an e-mail address, its @ also percent-encoded (%40);
#   :id     a UUID, or a run of 6 or more digits (order, customer, phone numbers,
#           timestamps); shorter numbers are kept (/p/42, /2025/11/);
#   :token  a run of 16 or more of [A-Za-z0-9_-] that looks random: hexadecimal
#           with digits, or digits interleaved with letters (a quarter of its
#           adjacent pairs switch between letter and digit: base32/36 ids), or both
#           cases mixed at random (base64, JWTs). Slugs keep their digits together
#           (black-friday-2025, galaxy-s24-ultra-256gb) and CamelCase switches case
#           once or twice a word. A heuristic: it catches about 9 in 10 random
#           16-character tokens and nearly all 32-character ones, and no slug of
#           the list in tests/test_enrich.py.
# What the rules cannot see (a name, a phone number with spaces) is the site's to
# keep out of its URLs; docs/privacy.md says so.
_SUSPECT = re.compile(r"@|%40|[0-9]{6}|[A-Za-z0-9_-]{16}")
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_UUID = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
_TOKEN_CANDIDATE = re.compile(r"[A-Za-z0-9_-]{16,}")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]+")
_WORD_SEPARATOR = re.compile(r"([_-])")
_DIGIT_RUN = re.compile(r"[0-9]{6,}")


def scrub_text(text: str) -> str:
    """`text` with e-mails, ids and tokens replaced by :email, :id and :token."""
    if not _SUSPECT.search(text):
        return text
    return _scrub_suspect(text)


@functools.lru_cache(maxsize=8192)
def _scrub_suspect(text: str) -> str:
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(":email", text)
    if "-" in text:
        text = _UUID.sub(":id", text)
    text = _TOKEN_CANDIDATE.sub(_token_or_kept, text)
    return _DIGIT_RUN.sub(":id", text)


def _token_or_kept(match: re.Match[str]) -> str:
    run = match.group()
    whole = _looks_random(run)
    if "-" in run or "_" in run:
        # A token inside a slug (reset-password-9f86d0818...) goes and the words stay;
        # a base64url token cut by its own '-' or '_' leaves only short pieces.
        words = _WORD_SEPARATOR.split(run)
        kept = [":token" if len(w) >= 16 and _looks_random(w) else w for w in words]
        if kept != words and not (whole and all(len(w) < 6 for w in kept if w != ":token")):
            return "".join(kept)
    return ":token" if whole else run


def _looks_random(run: str) -> bool:
    lower = upper = digit = 0
    pairs = class_changes = digit_changes = upper_pairs = lower_to_upper = 0
    previous = 0
    for char in run:
        if "a" <= char <= "z":
            kind = 1
            lower += 1
        elif "A" <= char <= "Z":
            kind = 2
            upper += 1
        elif "0" <= char <= "9":
            kind = 3
            digit += 1
        else:  # '-' or '_' separate words
            previous = 0
            continue
        if previous:
            pairs += 1
            if kind != previous:
                class_changes += 1
                digit_changes += kind == 3 or previous == 3
                lower_to_upper += previous == 1 and kind == 2
            else:
                upper_pairs += kind == 2
        previous = kind
    if digit and (lower or upper) and _HEX_RUN.fullmatch(run):
        return True
    # Digits interleaved with letters (base32/36 ids) ...
    if digit and (lower or upper) and digit_changes >= 0.25 * pairs:
        return True
    # ... or both cases mixed at random (base64, JWTs): a slug keeps its digits
    # together, and CamelCase switches case once or twice a word and seldom has two
    # capitals in a row.
    return bool(lower and upper) and (
        (digit > 0 and class_changes >= 0.5 * pairs)
        or (upper_pairs >= 3 and lower_to_upper >= 3)
    )


def scrub_url(url: str) -> tuple[str, dict[str, str]]:
    """(path, utm): the path without query or fragment, and the non-empty utm_* values."""
    _host, path, utm, _click_ids = _split_url(url)
    return path, dict(utm)


@functools.lru_cache(maxsize=4096)
def _split_url(url: str) -> tuple[str, str, Mapping[str, str], frozenset[str]]:
    """(host, path, utm, click id names) of a page URL, in one pass of str methods.

    Cached: a site's visitors land on the same few thousand URLs (its pages,
    its campaign links), so most beacons skip the parse and the scrub. The utm
    mapping is read-only because it is shared.
    """
    before_query, _, query = url.partition("#")[0].partition("?")
    start = before_query.find("://")
    start = 0 if start < 0 else start + 3
    slash = before_query.find("/", start)
    if slash < 0:
        authority, path = before_query[start:], "/"
    else:
        authority, path = before_query[start:slash], before_query[slash:]
    if ";" in path:
        # Path parameters carry session ids (Java's ;jsessionid=...) and route
        # parameters: the same kind of data as the query, so they go with it.
        path = "/".join(segment.partition(";")[0] for segment in path.split("/"))
    path = scrub_text(path)
    host = _strip_port(authority.rpartition("@")[2].lower())

    utm: dict[str, str] = {}
    click_ids: frozenset[str] = frozenset()
    if query:
        found: set[str] = set()
        for pair in query.split("&"):
            key, _, value = pair.partition("=")
            if "%" in key or "+" in key:
                key = unquote_plus(key)
            key = key.strip().lower()
            if key in _CLICK_IDS:
                found.add(key)
            elif key in _UTM_KEY_SET and value and key not in utm:
                # NUL comes from %00: PostgreSQL text cannot hold it.
                decoded = unquote_plus(value).replace("\x00", "").strip()[:_UTM_MAX_CHARS]
                if decoded:
                    utm[key] = scrub_text(decoded)
        click_ids = frozenset(found)
    return host, path, MappingProxyType(utm), click_ids


def _strip_port(authority: str) -> str:
    if authority.startswith("["):  # IPv6 literal: [::1]:8000
        return authority.partition("]")[0] + "]"
    return authority.partition(":")[0]


def classify_referrer(
    ref: str | None,
    page_url: str,
    utm: Mapping[str, str],
    click_ids: Collection[str] = (),
) -> tuple[str | None, str]:
    """(ref_origin, channel) for a marketing-consented page view.

    `click_ids` are the names of the click-id parameters of the page URL
    (gclid, fbclid ...), read before the query is dropped.
    """
    return _classify(ref, _split_url(page_url)[0], utm, click_ids)


def _classify(
    ref: str | None, page_host: str, utm: Mapping[str, str], click_ids: Collection[str]
) -> tuple[str | None, str]:
    parsed = _parse_referrer(ref) if ref else None
    ref_origin, ref_host = parsed if parsed is not None else (None, None)
    return ref_origin, _channel(ref_host, page_host, utm, click_ids)


def _channel(
    ref_host: str | None, page_host: str, utm: Mapping[str, str], click_ids: Collection[str]
) -> str:
    # First matching rule wins. Campaign tags and paid click ids come first: the
    # site or its ad platform set them on purpose, while the referrer only says
    # on which host the click happened.
    medium = utm.get("utm_medium", "").strip().lower()
    if medium in PAID_MEDIUMS or any(name in PAID_CLICK_IDS for name in click_ids):
        return "paid"
    if medium in EMAIL_MEDIUMS:
        return "email"
    if medium in SOCIAL_MEDIUMS:
        return "social"
    fbclid = "fbclid" in click_ids
    if ref_host is not None:
        if ref_host.removeprefix("www.") == page_host.removeprefix("www."):
            return "internal"
        kind = _host_kind(ref_host.removeprefix("www."))
        if kind == "search":
            return "search"
        if kind == "social" or fbclid:
            return "social"
        if kind == "email":
            return "email"
        return "referral"
    # No referrer: browsers drop it (Referrer-Policy, https -> http, apps), so
    # campaign tags and Facebook's click id are all that is left to go by.
    if not utm and not fbclid:
        return "direct"
    if fbclid:
        return "social"
    source = utm.get("utm_source")
    if source:
        kind = _source_kind(source)
        if kind == "search" or kind == "social":
            return kind
    return "referral"


@functools.lru_cache(maxsize=4096)
def _parse_referrer(ref: str) -> tuple[str, str] | None:
    """(origin, host) of a referrer, or None when it is not an absolute http(s) URL."""
    scheme, sep, rest = ref.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _REFERRER_SCHEMES:
        return None
    end = len(rest)
    for delimiter in "/?#":
        index = rest.find(delimiter, 0, end)
        if index >= 0:
            end = index
    # Userinfo (user:password@) is a secret, never part of an origin.
    authority = rest[:end].rpartition("@")[2].lower()
    if authority.startswith("["):
        close = authority.find("]")
        host, port = authority[: close + 1], authority[close + 1 :]
        if close < 0 or not _IPV6_CHARS.issuperset(host) or (port and port[0] != ":"):
            return None
        port = port[1:]
    else:
        host, _, port = authority.partition(":")
        host = host.rstrip(".")
        if not _HOST_CHARS.issuperset(host):
            return None
    if not host:
        return None
    if port:
        if not (port.isascii() and port.isdigit()) or int(port) > 65535:
            return None
        if _DEFAULT_PORTS.get(scheme) == port:
            port = ""
    origin = f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
    return origin, host


@functools.lru_cache(maxsize=4096)
def _host_kind(host: str) -> str | None:
    """'search', 'social', 'email' or None for a referrer host without its www."""
    suffix = host
    while True:
        kind = _HOST_KINDS.get(suffix)
        if kind is not None:
            return kind
        dot = suffix.find(".")
        if dot < 0:
            break
        suffix = suffix[dot + 1 :]
    if host.startswith(_WEBMAIL_PREFIX):
        return "email"
    brand = _bare_brand(host)
    if brand in SEARCH_BRANDS:
        return "search"
    if brand in SOCIAL_BRANDS:
        return "social"
    return None


def _bare_brand(host: str) -> str | None:
    """'google' for google.fr or google.co.uk; None for a subdomain such as docs.google.com."""
    labels = host.split(".")
    if len(labels) == 2:
        return labels[0]
    if len(labels) == 3 and labels[1] in _COUNTRY_SECOND_LEVELS and len(labels[2]) == 2:
        return labels[0]
    return None


@functools.lru_cache(maxsize=1024)
def _source_kind(source: str) -> str | None:
    name = source.strip().lower()
    if "." in name:
        return _host_kind(name.removeprefix("www."))
    if name in SEARCH_SOURCE_NAMES:
        return "search"
    if name in SOCIAL_SOURCE_NAMES:
        return "social"
    return None


# Automation that runs a real browser engine without a person: headless Chrome
# (Puppeteer's and Playwright's default), PhantomJS, and Lighthouse / PageSpeed runs.
_HEADLESS_MARKERS = ("HeadlessChrome", "Headless", "PhantomJS", "Lighthouse")


def automation_reason(ua: str) -> str | None:
    """Why a user agent is not a person's browser: 'no_user_agent', 'headless', 'bot';
    None for a browser.

    Every browser sends a User-Agent, so an empty one is a script. Bots are
    ua-parser's "Spider" device and the maintained crawler-user-agents patterns
    (search engines, AI crawlers, monitoring probes, HTTP libraries such as curl,
    python-requests, Go-http-client).
    """
    if len(ua) > _UA_MAX_CHARS:
        ua = ua[:_UA_MAX_CHARS]
    return _automation_reason(ua)


@functools.lru_cache(maxsize=4096)
def _automation_reason(ua: str) -> str | None:
    if not ua.strip():
        return "no_user_agent"
    if any(marker in ua for marker in _HEADLESS_MARKERS):
        return "headless"
    if _parse_user_agent(ua)[0] == "bot":
        return "bot"
    return None


def session_pseudonym(site: str, day: dt.date, sid: str) -> str:
    """The `sid` stored for a page view of `day`: a hash of the snippet's session id
    and the day, so one visitor's sessions on two days share no identifier.

    The snippet's sid is 80 random bits kept in the tab's sessionStorage; without
    it, which only the visitor's tab holds, two days' pseudonyms cannot be linked.
    The result has the form of a sid (16 of [A-Za-z0-9_-]).
    """
    digest = hashlib.blake2b(f"{site}\x00{day.isoformat()}\x00{sid}".encode(),
                             digest_size=12, person=b"binome.sid.v1").digest()
    return base64.urlsafe_b64encode(digest).decode()


def parse_user_agent(ua: str) -> tuple[str, str | None, str | None]:
    """(device_class, browser, os), browser and os as ua-parser's family names."""
    if len(ua) > _UA_MAX_CHARS:
        ua = ua[:_UA_MAX_CHARS]
    return _parse_user_agent(ua)


@functools.lru_cache(maxsize=4096)
def _parse_user_agent(ua: str) -> tuple[str, str | None, str | None]:
    if not ua.strip():
        return "unknown", None, None
    result = ua_parser.parse(ua)
    browser = _family(result.user_agent)
    os = _family(result.os)
    device = _family(result.device)
    return _device_class(ua, browser, os, device), browser, os


def _family(part: ua_parser.UserAgent | ua_parser.OS | ua_parser.Device | None) -> str | None:
    # ua-parser 1.0 reports a failed match as None; "Other" is the pre-1.0 spelling.
    if part is None or part.family == "Other":
        return None
    return part.family


def _device_class(ua: str, browser: str | None, os: str | None, device: str | None) -> str:
    # Rules on top of ua-parser, first match wins:
    #   bot:     ua-parser's device family "Spider", or a crawler-user-agents pattern
    #            (catches HeadlessChrome, curl, monitoring probes ua-parser lets through);
    #   tablet:  an iPad, or Android whose UA lacks "Mobile" (Google's guidance to
    #            Android browsers: phones say "Mobile", tablets do not) or says "Tablet"
    #            (Firefox for Android). iPadOS 13+ in its default desktop mode sends a
    #            Mac UA and counts as desktop: nothing in the UA tells them apart;
    #   mobile:  iPhone/iPod, Android with "Mobile", or "Mobi" anywhere (MDN's advice
    #            for detecting phones: covers Windows Phone, Opera Mobi ...);
    #   unknown: ua-parser recognises no browser, OS or device at all;
    #   desktop: everything else.
    if device == "Spider" or is_crawler(ua):
        return "bot"
    if device == "iPad" or (os == "Android" and ("Mobile" not in ua or "Tablet" in ua)):
        return "tablet"
    if device == "iPhone" or device == "iPod" or os == "Android" or "Mobi" in ua:
        return "mobile"
    if browser is None and os is None and device is None:
        return "unknown"
    return "desktop"


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


def to_record(
    beacon: Beacon | FastBeacon, received_at: dt.datetime, user_agent: str, country: str | None,
    *, session_per_day: bool = True,
) -> tuple[Any, ...]:
    """One row of binome.beacons, in COLUMNS order.

    JSON columns are returned as JSON text: the writer COPYs into jsonb without
    registering a codec. With `session_per_day`, `sid` is stored as its
    session_pseudonym for the page view's day.
    """
    page_host, path, utm, click_ids = _split_url(beacon.url)
    device_class, browser, os = parse_user_agent(user_agent)
    day = page_view_day(beacon.t0, received_at)
    sid = beacon.sid
    if sid is not None and session_per_day:
        sid = session_pseudonym(beacon.site, day, sid)

    if beacon.consent == "marketing":
        ref_origin, channel = _classify(beacon.ref, page_host, utm, click_ids)
        dims = {key: scrub_text(value) for key, value in beacon.dims.items()} or None
        events = beacon.events
    else:
        # CONTRACT section 4: at `performance` only what measures the site's own
        # performance survives, whatever the beacon carries.
        utm = {}
        ref_origin = channel = None
        page_type = beacon.dims.get("page_type")
        dims = {"page_type": scrub_text(page_type)} if page_type is not None else None
        events = []

    values = [event.value for event in events if event.value is not None]
    # Decimal from the float's shortest repr: 49.9 + 10.1 sums to 60.0, not 60.00000000000001.
    revenue = sum((Decimal(repr(value)) for value in values), Decimal(0)) if values else None

    # Later reports of a metric supersede earlier ones (web-vitals reports again
    # as LCP and CLS grow), so the last one in the beacon is its value here.
    metric_values = {metric.name: metric.value for metric in beacon.metrics}

    return (
        beacon.site,
        day,
        beacon.pv,
        beacon.seq,
        sid,
        received_at,
        None if beacon.t0 is None else dt.datetime.fromtimestamp(beacon.t0 / 1000, dt.UTC),
        beacon.consent,
        path,
        utm.get("utm_source"),
        utm.get("utm_medium"),
        utm.get("utm_campaign"),
        utm.get("utm_term"),
        utm.get("utm_content"),
        ref_origin,
        channel,
        beacon.release,
        _json(dims),
        device_class,
        browser,
        os,
        country,
        _part_json(beacon.device) if beacon.device else None,
        _part_json(beacon.nav) if beacon.nav else None,
        metric_values.get("LCP"),
        metric_values.get("INP"),
        metric_values.get("CLS"),
        metric_values.get("FCP"),
        metric_values.get("TTFB"),
        _metrics_json(beacon.metrics) if beacon.metrics else None,
        _json([_fields(event) for event in events]) if events else None,
        len(events),
        revenue,
    )


def _fields(model: BaseModel | msgspec.Struct) -> dict[str, Any]:
    """A validated part's set fields, as model_dump(exclude_none=True) gives them
    (None values inside a dict field stay) at a fraction of its cost: the beacon's
    parts hold only JSON scalars, lists and dicts. Works on the pydantic models and
    on their msgspec mirror (collector/beacon_decoder.py)."""
    if isinstance(model, msgspec.Struct):
        return {name: value for name in model.__struct_fields__
                if (value := getattr(model, name)) is not None}
    return {name: value for name, value in model.__dict__.items() if value is not None}


def _part_json(part: BaseModel | msgspec.Struct) -> str | None:
    """A device or navigation part's set fields as JSON text; None when none is set."""
    if isinstance(part, msgspec.Struct):
        # omit_defaults: the fields left None are left out, as _fields does.
        text = msgspec.json.encode(part).decode()
        return None if text == "{}" else text
    return _json(_fields(part) or None)


def _metrics_json(metrics: Sequence[Metric | FastMetric]) -> str:
    """The metrics as JSON text, serialised by pydantic's Rust core in one call,
    unless an attribution value is a URL to scrub (rare: LCP's resource url)."""
    if isinstance(metrics[0], msgspec.Struct):
        text = msgspec.json.encode(metrics).decode()  # omit_defaults: the None fields
    else:
        text = _METRIC_LIST.dump_json(metrics, exclude_none=True).decode()
    # A URL value starts a JSON string with h or H: only then look closer.
    if ('"h' in text or '"H' in text) and any(
            metric.attribution and any(_is_url(value) for value in metric.attribution.values())
            for metric in metrics):
        return orjson.dumps([_metric_dump(metric) for metric in metrics]).decode()
    return text


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value[:4].lower() == "http"


def _metric_dump(metric: Metric | FastMetric) -> dict[str, Any]:
    dump = _fields(metric)
    attribution = dump.get("attribution")
    if attribution and any(_is_url(value) for value in attribution.values()):
        # web-vitals attribution names resources by URL (LCP's `url`); a signed
        # CDN URL carries its token in the query, which is no more stored here
        # than the page's own.
        dump["attribution"] = {
            key: scrub_text(value.partition("#")[0].partition("?")[0])
            if _is_url(value) else value
            for key, value in attribution.items()}
    return dump


def _json(value: Any) -> str | None:
    """JSON text for a jsonb column; None (SQL NULL) for nothing to store."""
    return None if value is None else orjson.dumps(value).decode()
