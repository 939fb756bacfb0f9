"""User agents (collector/useragents.py): device class, browser, OS, and
automated traffic."""

from __future__ import annotations

import pytest

from collector.useragents import automation_reason, parse_user_agent

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
