"""Personal data out of what is stored: a page URL keeps its path and its five
utm_* values only (docs/beacon-format.md, "The beacon"); in every stored string
a client controls, control characters go, and e-mails, ids, tokens, IP
addresses, card, NIR and phone numbers become the placeholders :email, :id,
:token, :ip, :card, :nir and :phone (docs/privacy.md).

It runs for every accepted beacon, so it sticks to str methods where it can,
runs its precompiled regexes only when a cheap pre-check hits and caches what
repeats (a site's page URLs).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import unquote_plus

import phonenumbers
from stdnum import luhn
from stdnum.fr import nir

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_UTM_KEY_SET = frozenset(UTM_KEYS)
_UTM_MAX_CHARS = 256

# Click ids the ad platforms append to landing URLs: read to pick the channel
# (collector/channels.py), never stored.
CLICK_IDS = frozenset({"gclid", "gbraid", "wbraid", "msclkid", "dclid", "fbclid"})

# --- control characters -----------------------------------------------------------------
# A client's string can carry terminal escapes (ESC]0;title, ESC[31m) that would
# act on the analyst's terminal when `binome report` prints it (issue 20). Every
# stored string a client controls goes through scrub_text, which removes C0
# (U+0000-U+001F), DEL and C1 (U+0080-U+009F) controls; tab and line breaks
# become a space.
_CONTROLS = {code: None for code in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROLS.update({ord(space): " " for space in "\t\n\v\f\r"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """`text` without C0, DEL and C1 control characters (tab and line breaks: a space)."""
    return text.translate(_CONTROLS) if _CONTROL.search(text) else text

# --- personal data in paths and campaign values ----------------------------------------
# Sites put people's identifiers in URLs (/account/jean.dupont@example.fr,
# /orders/100234567, /reset/9f86d081884c7d659a2feaa0c55ad015) and CRMs put them in
# campaign tags (utm_content=contact-00123456). Stored, they would make a row
# traceable to a person, which neither consent level allows (docs/privacy.md).
# Each match is replaced by a placeholder, rules applied in this order:
#   :email  an e-mail address, its @ also percent-encoded (%40);
#   :token  a JWT (eyJ...), whole;
#   :id     a UUID;
#   :ip     an IPv4 or IPv6 address (the stdlib's ipaddress decides);
#   :card   13 to 19 digits, spaces or dashes between them allowed, that pass the
#           Luhn check (python-stdnum), as payment cards do;
#   :nir    a French social security number (NIR, "numéro INSEE": 13 digits and
#           a 2-digit key, spaced or not) whose key is right (python-stdnum);
#   :phone  a phone number in any usual national or international form
#           (06 12 34 56 78, 06.12.34.56.78, +33 6 12 34 56 78, 0033 6 ...),
#           French numbers without a country code (phonenumbers, Google's
#           libphonenumber: it knows each country's numbering plan);
#   :token  a run of 16 or more of [A-Za-z0-9_-] that looks random: hexadecimal
#           with digits, or digits interleaved with letters (a quarter of its
#           adjacent pairs switch between letter and digit: base32/36 ids), or both
#           cases mixed at random (base64), or one case with few vowels (base32:
#           random letters are one fifth vowels, words nearly twice that; under 3
#           in 10 with a digit, under 2 in 10 without). Slugs keep their
#           digits together (black-friday-2025, galaxy-s24-ultra-256gb) and
#           CamelCase switches case once or twice a word. A heuristic: it catches
#           about 9 in 10 random 16-character tokens and nearly all 32-character
#           ones, and no slug of the list in tests/test_scrub.py;
#   :id     any other run of 6 or more digits (order, customer numbers,
#           timestamps); shorter numbers are kept (/p/42, /2025/11/).
# What the rules cannot see (a name, a street address) is the site's to keep
# out of its URLs; docs/privacy.md says so.
_SUSPECT = re.compile(
    r"[@%:\x00-\x1f\x7f-\x9f]|[0-9](?:[0-9]{5}|[ .()-]+[0-9]{2})|[A-Za-z0-9_-]{16}")
# RFC 5322's atext in the local part, without what delimits URL parts (/ ? # & =).
_EMAIL = re.compile(
    r"[A-Za-z0-9.!$%'*+^_`{|}~-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?")
_UUID = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
_IPV4 = re.compile(r"(?<![0-9A-Za-z.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9.]|\.[0-9])")
_IPV6 = re.compile(r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}"
                   r"(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?(?![0-9A-Za-z:])")
_CARD = re.compile(r"(?<![0-9])[2-6](?:[ -]?[0-9]){12,18}(?![0-9])")
_NIR = re.compile(r"(?<![0-9A-Za-z])[12] ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[ABab])"
                  r" ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}(?![0-9])")
_PHONE_CANDIDATE = re.compile(r"[0-9][ .()-]*[0-9][ .()-]*[0-9]{2}")
_TOKEN_CANDIDATE = re.compile(r"[A-Za-z0-9_-]{16,}")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]+")
_WORD_SEPARATOR = re.compile(r"([_-])")
# A slug's word: lower, upper or capitalised letters, digits in one run at an end.
_WORD = re.compile(r"[a-z]+[0-9]*|[A-Z][a-z]*[0-9]*|[A-Z]+[0-9]*|[0-9]+(?:[a-z]*|[A-Z]*)")
_DIGIT_RUN = re.compile(r"[0-9]{6,}")
_VOWELS = frozenset("aeiouAEIOU")


@functools.lru_cache(maxsize=16384)
def scrub_text(text: str) -> str:
    """`text` without control characters, and with e-mails, ids, tokens, IP
    addresses, card, NIR and phone numbers replaced by their placeholders.

    Every stored string a client controls goes through it (collector/enrich.py),
    several a beacon: cached, as most repeat (a site's dimension values, event
    names, selectors); a string with nothing suspect costs one regex search.
    """
    return _scrub(text, ids=True) if _SUSPECT.search(text) else text


@functools.lru_cache(maxsize=1024)
def scrub_label(text: str) -> str:
    """scrub_text for a build label (the release): control characters, e-mails,
    card, NIR and phone numbers, but not the id, token and IP rules, which would
    erase what names a build (a git commit hash, a build number, 1.2.3.4)."""
    return _scrub(text, ids=False) if _SUSPECT.search(text) else text


def _scrub(text: str, *, ids: bool) -> str:
    text = strip_controls(text)
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(":email", text)
    if ids:
        if "eyJ" in text:
            text = _JWT.sub(":token", text)
        if "-" in text:
            text = _UUID.sub(":id", text)
        if ":" in text:
            text = _IPV6.sub(_ip_or_kept, text)
        if "." in text:
            text = _IPV4.sub(_ip_or_kept, text)
    text = _CARD.sub(_card_or_kept, text)
    text = _NIR.sub(_nir_or_kept, text)
    if _PHONE_CANDIDATE.search(text):
        text = _scrub_phones(text)
    if ids:
        text = _TOKEN_CANDIDATE.sub(_token_or_kept, text)
        text = _DIGIT_RUN.sub(":id", text)
    return text


def _ip_or_kept(match: re.Match[str]) -> str:
    try:
        ipaddress.ip_address(match.group())
    except ValueError:
        return match.group()
    return ":ip"


def _card_or_kept(match: re.Match[str]) -> str:
    return ":card" if luhn.is_valid(match.group().replace(" ", "").replace("-", "")) \
        else match.group()


def _nir_or_kept(match: re.Match[str]) -> str:
    return ":nir" if nir.is_valid(match.group()) else match.group()


def _scrub_phones(text: str) -> str:
    found = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(
        text, "FR", leniency=phonenumbers.Leniency.VALID)]
    for start, end in reversed(found):
        text = text[:start] + ":phone" + text[end:]
    return text


def _token_or_kept(match: re.Match[str]) -> str:
    run = match.group()
    whole = _looks_random(run)
    if "-" in run or "_" in run:
        # A token inside a slug (reset-password-9f86d0818...) goes and the words stay;
        # a base64url token cut by its own '-' or '_' leaves pieces that are no
        # slug's words (a JWT signature's tail): then the whole run goes.
        words = _WORD_SEPARATOR.split(run)
        kept = [":token" if len(w) >= 16 and _looks_random(w) else w for w in words]
        rest = [w for w in kept if w not in (":token", "-", "_", "")]
        if kept != words and not (whole and (
                all(len(w) < 6 for w in rest) or not all(_WORD.fullmatch(w) for w in rest))):
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
    # ... or letters of one case with few vowels (base32: A-Z and 2-7) ...
    letters = lower + upper
    if letters >= 12 and not (lower and upper) and "-" not in run and "_" not in run:
        vowels = sum(char in _VOWELS for char in run)
        if (vowels < (0.3 if digit else 0.2) * letters
                and len(set(run)) >= min(10, len(run) // 2)):
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
                if "@" in value or "%40" in value:
                    # Before decoding: a '+' in an address (jean.dupont+news@...)
                    # would become a space and cut the address in two.
                    value = _EMAIL.sub(":email", value)
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
