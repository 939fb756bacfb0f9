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
        self.base = ""
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
    # By t0, a session's order (contract section 5): received_at is cut to the
    # minute, so page views received within one minute tie and came back in
    # any order (seen with the web-vitals 5 snippet too, 1 run in 2).
    return await conn.fetch(
        "SELECT * FROM rum.page_views_enriched WHERE sid = $1 ORDER BY t0", sid)


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


# A single-page shop (issue 22): one HTML document for every path; links and
# buttons change the route with history.pushState and render it, the back
# button (popstate) renders the route it returns to.
SPA_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SPA shop</title>
<script>window.binome=window.binome||function(){(binome.q=binome.q||[]).push(arguments)};</script>
SNIPPET
<style>h1 { font-size: 48px; } .hero { width: 600px; height: 300px; background: #c33; }</style>
</head><body>
<button id="consent-accept" onclick="binome('consent', 'marketing')">Accept</button>
<nav><a id="to-product" href="/product/42">Mug</a> <a id="to-cart" href="/cart">Cart</a>
<button id="buy">Buy</button></nav>
<main id="app"></main>
<script>
const routes = {
  '/': '<h1>Winter sale</h1><div class="hero"></div>',
  '/product/42': '<h1>The mug</h1><p>A mug for the winter, in a large paragraph of text.</p>',
  '/cart': '<h1>Your cart</h1><p>One mug, 49.90 EUR. Checkout is one click away.</p>',
};
const render = () => {
  document.getElementById('app').innerHTML = routes[location.pathname] || '<h1>Not found</h1>';
};
const go = (event) => {
  event.preventDefault();
  history.pushState({}, '', event.currentTarget.getAttribute('href'));
  render();
};
document.getElementById('to-product').addEventListener('click', go);
document.getElementById('to-cart').addEventListener('click', go);
document.getElementById('buy').addEventListener('click', () => {
  binome('conversion', 'purchase', 49.9, 'EUR');
  // The cart's late banner: a layout shift a second after the click, so not
  // input-driven: a shift within 500 ms of an input has hadRecentInput and is
  // left out of CLS (Layout Instability API).
  setTimeout(() => {
    if (location.pathname == '/cart') document.getElementById('app').insertAdjacentHTML(
      'afterbegin', '<div style="height: 120px; background: #fc0">Free delivery today</div>');
  }, 1000);
  const until = performance.now() + 250;  // a slow handler: the cart's INP
  while (performance.now() < until) {}
});
addEventListener('popstate', render);
render();
</script></body></html>
"""


class SpaShop:
    """Serves SPA_PAGE at every path, the snippet loaded from the collector."""

    def __init__(self, collector: str) -> None:
        self.tag = ""
        shop = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/favicon"):
                    self.send_error(404)
                    return
                body = SPA_PAGE.replace("SNIPPET", shop.tag).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self.collector = collector
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self) -> str:
        name = "spa-" + secrets.token_hex(4)
        self.tag = (f'<script src="{self.collector}/binome.js" data-site="demo" '
                    f'data-release="{name}" async></script>')
        return name


@pytest.fixture(scope="module")
def spa_shop(live_server: str) -> Iterator[SpaShop]:
    served = SpaShop(live_server.replace("127.0.0.1", "localhost"))
    yield served
    served.server.shutdown()
    served.server.server_close()


async def spa_journey(visitor: Visit) -> tuple[str, bool]:
    """The issue's scenario: land with a campaign, accept marketing, two
    pushState routes, a slow conversion click on the cart and its late banner,
    back by popstate, leave. Returns the sid and whether the page had the Soft
    Navigations API."""
    page = visitor.page
    await page.goto(visitor.base + "/?utm_campaign=winter", referer="https://mail.example.com/")
    await page.click("#consent-accept")
    await page.wait_for_timeout(300)  # the landing page's paints are reported
    await page.click("#to-product")
    await page.wait_for_url("**/product/42")
    await page.wait_for_timeout(300)
    await page.click("#to-cart")
    await page.wait_for_url("**/cart")
    await page.click("#buy")
    await page.wait_for_selector("text=Free delivery today")
    await page.wait_for_timeout(300)  # the layout shift entry is dispatched
    await page.go_back(wait_until="commit")  # popstate: same document
    await page.wait_for_url("**/product/42")
    await page.wait_for_timeout(300)
    sid = await page.evaluate("sessionStorage.getItem('binome.sid')")
    soft_navigations = await page.evaluate("typeof PerformanceSoftNavigation == 'function'")
    await page.goto("about:blank")  # hidden + pagehide: the last beacons go
    assert sid
    return sid, soft_navigations


async def spa_page_views(conn: asyncpg.Connection, sid: str) -> list[asyncpg.Record]:
    await wait_for(conn, "SELECT count(*) FROM rum.page_views_enriched WHERE sid = $1",
                   sid, expect=4, timeout=20)
    # Late reports (the landing page's LCP, the cart's INP) come with later
    # beacons of their page views.
    await wait_for(conn, "SELECT lcp IS NOT NULL FROM rum.page_views_enriched"
                   " WHERE sid = $1 AND path = '/'", sid, timeout=20)
    await wait_for(conn, "SELECT inp IS NOT NULL AND cls IS NOT NULL"
                   " FROM rum.page_views_enriched WHERE sid = $1 AND path = '/cart'",
                   sid, timeout=20)
    return await conn.fetch(
        "SELECT * FROM rum.page_views_enriched WHERE sid = $1 ORDER BY t0", sid)


async def test_every_route_of_a_single_page_application_is_a_page_view(
    spa_shop: SpaShop, visit: Any, conn: asyncpg.Connection
) -> None:
    release_name = spa_shop.release()
    visitor = await visit()
    visitor.base = spa_shop.url
    sid, soft_navigations = await spa_journey(visitor)
    assert soft_navigations, "Debian's Chromium 151+ has the Soft Navigations API"
    rows = await spa_page_views(conn, sid)
    assert [row["path"] for row in rows] == ["/", "/product/42", "/cart", "/product/42"]
    assert len({row["pv"] for row in rows}) == 4
    assert {row["release"] for row in rows} == {release_name}
    landing, product, cart, back = rows
    assert landing["lcp"] > 0 and landing["utm_campaign"] == "winter"
    assert [row["converted"] for row in rows] == [False, False, True, False]
    assert float(cart["revenue"]) == pytest.approx(49.9)
    for route in (product, cart, back):
        assert as_json(route["nav"]) == {"type": "soft-navigation"}
        assert route["utm_campaign"] is None, "a route's URL has no campaign of its own"
        assert route["channel"] == "internal"
    # web-vitals reports each route's own metrics (README "Single-page
    # applications"), under the route's page view.
    for route in (product, cart):
        assert route["lcp"] > 0 and route["fcp"] > 0 and route["ttfb"] is None
    assert cart["inp"] >= 200, "the slow click on the cart"
    assert cart["cls"] > 0, "the cart's late banner"
    assert landing["inp"] < 200 and not landing["cls"]
    reports = await conn.fetch(
        "SELECT b.pv, m ->> 'navigationType' AS type FROM binome.beacons b,"
        " jsonb_array_elements(b.metrics) m WHERE b.sid = $1", sid)
    for report in reports:
        expected = "navigate" if report["pv"] == landing["pv"] else "soft-navigation"
        assert report["type"] == expected, report

    session = await conn.fetchrow("SELECT * FROM rum.sessions WHERE sid = $1", sid)
    assert session["utm_campaign"] == "winter" and session["page_views"] == 4
    assert session["landing_path"] == "/"
    scorecard = await conn.fetchrow(
        "SELECT sum(page_views) AS page_views, sum(sessions) AS sessions"
        " FROM rum.scorecard_daily WHERE site = 'demo' AND utm_campaign = 'winter'"
        " AND day = $1", landing["day"])
    assert (scorecard["page_views"], scorecard["sessions"]) == (4, 1)
    assert visitor.errors == []


async def test_without_the_soft_navigations_api_a_route_has_its_own_inp_and_cls_but_no_lcp(
    spa_shop: SpaShop, visit: Any, conn: asyncpg.Connection
) -> None:
    """As in Safari and Firefox: the API is hidden from the page (web-vitals and
    the snippet both look for PerformanceSoftNavigation)."""
    spa_shop.release()
    visitor = await visit()
    visitor.base = spa_shop.url
    await visitor.context.add_init_script("delete window.PerformanceSoftNavigation")
    sid, soft_navigations = await spa_journey(visitor)
    assert not soft_navigations
    rows = await spa_page_views(conn, sid)
    assert [row["path"] for row in rows] == ["/", "/product/42", "/cart", "/product/42"]
    landing, product, cart, back = rows
    assert landing["lcp"] > 0 and landing["fcp"] > 0 and landing["ttfb"] > 0
    for route in (product, cart, back):
        assert (route["lcp"], route["fcp"], route["ttfb"]) == (None, None, None)
    assert cart["inp"] >= 200, "the slow click happened while the cart was current"
    assert cart["cls"] > 0, "the banner shifted while the cart was current"
    assert landing["inp"] < 200 and not landing["cls"]
    assert [row["converted"] for row in rows] == [False, False, True, False]
    assert visitor.errors == []


async def test_a_single_page_application_without_marketing_consent_keeps_no_campaign(
    spa_shop: SpaShop, visit: Any, conn: asyncpg.Connection
) -> None:
    spa_shop.release()
    visitor = await visit()
    page = visitor.page
    await page.goto(spa_shop.url + "/?utm_campaign=secret-sale")
    await page.wait_for_timeout(200)
    await page.click("#to-product")
    await page.wait_for_url("**/product/42")
    await page.click("#to-cart")
    await page.wait_for_url("**/cart")
    await page.click("#buy")
    sid = await page.evaluate("sessionStorage.getItem('binome.sid')")
    await page.goto("about:blank")
    assert sid
    await wait_for(conn, "SELECT count(DISTINCT pv) FROM binome.beacons WHERE sid = $1",
                   sid, expect=3, timeout=20)
    stored_rows = await conn.fetch(
        "SELECT consent, path, utm_campaign, channel, ref_origin, event_count"
        " FROM binome.beacons WHERE sid = $1", sid)
    for row in stored_rows:
        assert row["consent"] == "performance"
        assert row["utm_campaign"] is None and row["channel"] is None
        assert row["ref_origin"] is None and row["event_count"] == 0
    assert {row["path"] for row in stored_rows} == {"/", "/product/42", "/cart"}
    session = await conn.fetchrow("SELECT * FROM rum.sessions WHERE sid = $1", sid)
    assert session["utm_campaign"] == "(no consent)"
    assert not await conn.fetchval(
        "SELECT count(*) FROM rum.scorecard_daily WHERE utm_campaign = 'secret-sale'")
    assert visitor.errors == []


class DebugPage:
    """One page of its own on http://127.0.0.1:A embedding the snippet of the
    collector at http://localhost:B with data-debug, for the site a test names."""

    def __init__(self, collector: str) -> None:
        self.site = "demo"
        page = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = (f'<!doctype html><title>debug</title><h1>Debug</h1><script src="{collector}'
                        f'/binome.js" data-site="{page.site}" data-debug async></script>').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def debug_page(live_server: str) -> Iterator[DebugPage]:
    served = DebugPage(live_server.replace("127.0.0.1", "localhost"))
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.mark.parametrize(("site", "answer"), [
    ("demo", "204 "),
    ("nobody-registered-this",
     '403 {"error":"unknown_site","detail":"site nobody-registered-this is not registered"}'),
])
async def test_data_debug_logs_each_beacon_and_its_answer_to_the_console(
        visit: Any, debug_page: DebugPage, site: str, answer: str) -> None:
    """Issue 24: a snippet set up wrong explains itself in the browser's console."""
    debug_page.site = site
    visitor = await visit()
    logged: list[str] = []
    visitor.page.on("console", lambda message: logged.append(message.text))
    await visitor.page.goto(debug_page.url)
    await visitor.page.wait_for_function("typeof window.binome == 'function'")
    # The page stays, so the answer can be read: its pagehide sends the beacon.
    await visitor.page.evaluate("dispatchEvent(new PageTransitionEvent('pagehide'))")
    deadline = asyncio.get_running_loop().time() + 20
    while not any(line.startswith("binome ") for line in logged):
        assert asyncio.get_running_loop().time() < deadline, logged
        await asyncio.sleep(0.05)
    [line] = [line for line in logged if line.startswith("binome ")]
    sent, _, told = line.removeprefix("binome ").partition("} ")
    beacon = json.loads(sent + "}")
    assert beacon["site"] == site and beacon["seq"] == 0 and beacon["v"] == 1
    assert told == answer
    assert visitor.errors == []
