"""User agents: the device class, browser and OS stored with a page view, and
whether the sender is automated traffic rather than a person's browser. Cached
per distinct user agent."""

from __future__ import annotations

import functools

import ua_parser
from crawleruseragents import is_crawler  # type: ignore[import-untyped]

# Real user agents stay under 1 KiB; longer ones are cut so junk cannot make the
# cache hold megabytes or the parser scan them.
_UA_MAX_CHARS = 1024


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
