"""Channels and referrer origins (collector/channels.py)."""

from __future__ import annotations

import pytest

from collector.channels import classify_referrer


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
