"""Where a marketing-consented page view came from: the referrer's origin and
the channel (direct, internal, search, social, email, paid, referral), from the
page URL's campaign tags and click ids and the referrer's host. Cached per
distinct referrer host and utm_source."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping

from collector.scrub import CLICK_IDS, split_url

# fbclid is added by Facebook to every outbound link, organic posts included, so
# it says "social", not "paid".
SOCIAL_CLICK_IDS = frozenset({"fbclid"})
PAID_CLICK_IDS = CLICK_IDS - SOCIAL_CLICK_IDS

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
    return classify(ref, split_url(page_url)[0], utm, click_ids)


def classify(
    ref: str | None, page_host: str, utm: Mapping[str, str], click_ids: Collection[str]
) -> tuple[str | None, str]:
    """classify_referrer() for a page URL already split (scrub.split_url)."""
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
