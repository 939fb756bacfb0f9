"""The snippet end to end in headless Chromium (Debian's, never a downloaded one).

The demo shop is served by a tiny HTTP server on http://127.0.0.1:A; the page
loads /binome.js from the collector at http://localhost:B, which is also where
the beacons go: page and collector are two origins, as on a real site. What
the tests check is what PostgreSQL ends up holding.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from collector import PROJECT_ROOT
from tests.conftest import chromium, wait_for

pytestmark = pytest.mark.browser

DEMO = PROJECT_ROOT / "demo"
# The embedding of the README's "Embedding the snippet", as every demo page has it.
SNIPPET_TAG = '<script src="/binome.js" data-site="demo" data-release="demo-1" async></script>'
CAMPAIGN = "/?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday&ab=B"


class DemoShop:
    """Serves demo/ like the collector does (index.html at /, the rest under
    /demo/), with the snippet tag pointed at the collector and given the
    attributes a test asks for."""

    def __init__(self, collector: str) -> None:
        self.collector = collector
        self.attributes = 'data-release="demo-1"'
        shop = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                name = "index.html" if path == "/" else path.removeprefix("/demo/")
                file = DEMO / name
                if "/" in name or not file.is_file():
                    self.send_error(404)
                    return
                body = shop.render(file.read_text())
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def render(self, html: str) -> bytes:
        assert SNIPPET_TAG in html, "demo page without the contract's embedding"
        tag = (f'<script src="{self.collector}/binome.js" data-site="demo" '
               f"{self.attributes} async></script>")
        return html.replace(SNIPPET_TAG, tag).encode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def shop(live_server: str) -> Iterator[DemoShop]:
    # localhost, not 127.0.0.1: another host as well as another port.
    served = DemoShop(live_server.replace("127.0.0.1", "localhost"))
    yield served
    served.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    # Playwright turns the back/forward cache off by default; real browsers
    # have it on, and the snippet must handle restores.
    async with chromium(ignore_default_args=["--disable-back-forward-cache"]) as launched:
        yield launched


class Visit:
    """One visitor: a fresh browser context (empty storage), its page and
    every uncaught error the host page saw."""

    def __init__(self, context: Any, page: Any) -> None:
        self.context = context
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))


@pytest.fixture
async def visit(browser: Any) -> AsyncIterator[Any]:
    visits: list[Visit] = []

    async def open_visit() -> Visit:
        context = await browser.new_context()
        opened = Visit(context, await context.new_page())
        visits.append(opened)
        return opened

    yield open_visit
    for opened in visits:
        await opened.context.close()


def as_json(value: Any) -> Any:
    """asyncpg hands jsonb over as text."""
    return json.loads(value) if isinstance(value, str) else value


def release(shop: DemoShop, **attributes: str) -> str:
    """A release of its own for this test, so its rows are told apart."""
    name = "e2e-" + secrets.token_hex(4)
    shop.attributes = " ".join(
        [f'data-release="{name}"'] + [f'data-{k}="{v}"' for k, v in attributes.items()])
    return name


async def shop_journey(visitor: Visit, base: str, consent_button: str | None) -> str | None:
    """Land from the newsletter, answer the consent banner, wait for the late
    banner's layout shift, click the slow button, buy, leave. Returns the sid."""
    page = visitor.page
    await page.goto(base + CAMPAIGN, referer="https://mail.example.com/")
    await page.wait_for_selector("#late-banner")
    await page.wait_for_timeout(300)  # the layout shift entry is dispatched
    if consent_button:
        await page.click(consent_button)
    await page.click("#slow")
    await page.wait_for_timeout(300)
    await page.click("#product-mug")
    await page.wait_for_url("**/demo/product.html?sku=mug")
    await page.click("#buy")
    await page.wait_for_url("**/demo/thanks.html")
    await page.wait_for_load_state("load")
    # The snippet creates the session id at its first send (leaving the landing page).
    sid = await page.evaluate("sessionStorage.getItem('binome.sid')")
    await page.goto("about:blank")  # hidden + pagehide: the last beacons go
    return sid


async def page_views(conn: asyncpg.Connection, sid: str, count: int) -> list[asyncpg.Record]:
    await wait_for(conn, "SELECT count(*) FROM rum.page_views_enriched WHERE sid = $1",
                   sid, expect=count, timeout=20)
    # The landing page's INP and CLS come with its last beacon (at hide).
    await wait_for(conn, "SELECT inp IS NOT NULL AND cls IS NOT NULL FROM rum.page_views_enriched"
                   " WHERE sid = $1 AND path = '/'", sid, timeout=20)
    return await conn.fetch(
        "SELECT * FROM rum.page_views_enriched WHERE sid = $1 ORDER BY received_at", sid)


async def test_marketing_consent_stores_vitals_campaign_and_conversion(
    shop: DemoShop, visit: Any, conn: asyncpg.Connection
) -> None:
    name = release(shop)
    visitor = await visit()
    sid = await shop_journey(visitor, shop.url, "#consent-accept")
    assert sid and len(sid) == 16
    landing, product, thanks = await page_views(conn, sid, 3)

    assert landing["path"] == "/" and landing["consent"] == "marketing"
    assert landing["lcp"] > 0 and landing["fcp"] > 0 and landing["ttfb"] > 0
    assert landing["cls"] > 0, "the late banner's layout shift"
    assert landing["inp"] >= 200, "the slow button blocks the main thread ~300 ms"
    assert landing["utm_campaign"] == "black-friday" and landing["channel"] == "email"
    assert landing["release"] == name
    assert as_json(landing["dims"]) == {"page_type": "landing", "ab_variant": "B"}
    metrics = await conn.fetch(
        "SELECT m FROM binome.beacons, jsonb_array_elements(metrics) m WHERE pv = $1",
        landing["pv"])
    reports = [as_json(row["m"]) for row in metrics]
    targets = {m["name"]: m.get("attribution", {}).get("target") for m in reports}
    assert targets["INP"] == "#slow"
    assert targets["LCP"] and targets["CLS"]

    assert product["path"] == "/demo/product.html" and product["converted"] is False
    assert thanks["path"] == "/demo/thanks.html" and thanks["sid"] == sid
    assert thanks["converted"] is True and float(thanks["revenue"]) == pytest.approx(49.9)
    assert as_json(thanks["dims"]) == {"page_type": "thanks"}
    assert visitor.errors == []


async def test_without_consent_the_page_views_are_measured_at_performance(
    shop: DemoShop, visit: Any, conn: asyncpg.Connection
) -> None:
    release(shop)
    visitor = await visit()
    sid = await shop_journey(visitor, shop.url, "#consent-refuse")
    assert sid
    landing, _, thanks = await page_views(conn, sid, 3)
    assert landing["consent"] == "performance" and landing["path"] == "/"
    assert landing["lcp"] > 0 and landing["cls"] > 0 and landing["inp"] > 0
    assert thanks["converted"] is None and thanks["revenue"] is None
    # Not only hidden by the view: nothing marketing was stored at all.
    stored = await conn.fetch(
        "SELECT consent, utm_campaign, channel, ref_origin, dims, event_count, events"
        " FROM binome.beacons WHERE sid = $1", sid)
    assert len(stored) >= 3
    for row in stored:
        assert row["consent"] == "performance"
        assert row["utm_campaign"] is None and row["channel"] is None
        assert row["ref_origin"] is None
        assert set(as_json(row["dims"]) or {}) <= {"page_type"}
        assert row["event_count"] == 0 and not as_json(row["events"])
    assert visitor.errors == []


async def test_no_banner_answer_is_performance_too(
    shop: DemoShop, visit: Any, conn: asyncpg.Connection
) -> None:
    release(shop)
    visitor = await visit()
    sid = await shop_journey(visitor, shop.url, None)
    assert sid
    rows = await page_views(conn, sid, 3)
    assert {row["consent"] for row in rows} == {"performance"}
    assert visitor.errors == []


@pytest.mark.parametrize("attributes", [{"consent": "none"}, {"sample": "0"}],
                         ids=["consent-none", "sample-0"])
async def test_unmeasured_page_views_store_nothing(
    shop: DemoShop, visit: Any, conn: asyncpg.Connection, attributes: dict[str, str]
) -> None:
    silent = release(shop, **attributes)
    visitor = await visit()
    sid = await shop_journey(visitor, shop.url, None)
    assert sid is None, "an unmeasured page view does not even get a session id"
    assert visitor.errors == []

    # A measured visit afterwards: once its rows are in, the silent visit's
    # would have been too, had it sent any.
    control = release(shop)
    other = await visit()
    await other.page.goto(shop.url + "/")
    await other.page.goto("about:blank")
    await wait_for(conn, "SELECT count(*) FROM binome.beacons WHERE release = $1", control,
                   timeout=20)
    assert await conn.fetchval("SELECT count(*) FROM binome.beacons WHERE release = $1",
                               control) > 0
    await asyncio.sleep(0.5)
    assert await conn.fetchval(
        "SELECT count(*) FROM binome.beacons WHERE release = $1", silent) == 0


async def test_a_page_restored_from_the_back_forward_cache_is_a_new_page_view(
    shop: DemoShop, visit: Any, conn: asyncpg.Connection
) -> None:
    release(shop)
    visitor = await visit()
    page = visitor.page
    await page.goto(shop.url + CAMPAIGN)
    await page.click("#consent-accept")
    await page.click("#product-mug")
    await page.wait_for_url("**/demo/product.html?sku=mug")
    await page.wait_for_load_state("load")
    await page.go_back(wait_until="commit")  # a restore fires no load event
    await page.wait_for_selector("#slow")
    await page.wait_for_timeout(300)
    sid = await page.evaluate("sessionStorage.getItem('binome.sid')")
    await page.goto("about:blank")
    assert sid
    await wait_for(conn, "SELECT count(DISTINCT pv) FROM binome.beacons WHERE sid = $1", sid,
                   expect=3, timeout=20)
    rows = await conn.fetch(
        "SELECT pv, min(seq) AS first_seq, min(received_at) AS received_at,"
        " array_agg(DISTINCT nav ->> 'type') AS nav_types,"
        " array_agg(DISTINCT m ->> 'navigationType') AS metric_types"
        " FROM binome.beacons LEFT JOIN LATERAL jsonb_array_elements(metrics) m ON true"
        " WHERE sid = $1 AND path = '/' GROUP BY pv ORDER BY received_at", sid)
    assert len(rows) == 2, "the landing page, then its restore under a new pv"
    first, restored = rows
    assert first["nav_types"] == ["navigate"]
    assert restored["first_seq"] == 0
    assert restored["nav_types"] == ["back-forward-cache"]
    assert restored["metric_types"] == ["back-forward-cache"]
    assert visitor.errors == []
