"""Personal data out of what is stored: a page URL keeps its path and its five
utm_* values only (docs/beacon-format.md, "The beacon"), and e-mails, ids and
tokens in what is kept become the placeholders :email, :id and :token.

It runs for every accepted beacon, so it sticks to str methods where it can,
runs its precompiled regexes only when a cheap pre-check hits and caches what
repeats (a site's page URLs).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import unquote_plus

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_UTM_KEY_SET = frozenset(UTM_KEYS)
_UTM_MAX_CHARS = 256

# Click ids the ad platforms append to landing URLs: read to pick the channel
# (collector/channels.py), never stored.
CLICK_IDS = frozenset({"gclid", "gbraid", "wbraid", "msclkid", "dclid", "fbclid"})

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
#           the list in tests/test_scrub.py.
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
    _host, path, utm, _click_ids = split_url(url)
    return path, dict(utm)


@functools.lru_cache(maxsize=4096)
def split_url(url: str) -> tuple[str, str, Mapping[str, str], frozenset[str]]:
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
            if key in CLICK_IDS:
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
