"""The scorecard page fits every screen (issue 24), in Debian's Chromium: on a
390 px phone no table is cut without a cue, a table wider than its card
scrolls inside it and a shadow at the scrolling edge says there is more; at
1,400 px every card fits, tables included (the Releases card clipped its
conversion column). Each element's width is compared with its container's.

The fixture: the proof's releases and variants (tests/test_dashboard_proof.py)
and the report's long campaign names and revenues of hundreds of millions
(tests/test_report_layout.py), on a site whose revenue is in US dollars.
Full-page screenshots land in a temporary directory (and test-artifacts/)."""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest

from collector import db, objectives
from collector.row import COLUMNS
from tests.conftest import Collector
from tests.synthetic import insert_beacons
from tests.test_dashboard import Page, open_dashboard, screenshot_path
from tests.test_dashboard_proof import rows_of
from tests.test_report_layout import CAMPAIGNS, campaign_rows

PHONE, DESKTOP = 390, 1400


def with_inp(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The proof's page views, each with an INP: every figure of the Releases
    card then has a difference, an interval and a verdict, its widest content."""
    rng = random.Random(4)
    inp = COLUMNS.index("inp")
    return [row[:inp] + (round(rng.lognormvariate(5.2, 0.5), 1),) + row[inp + 1:] for row in rows]


@pytest.fixture(scope="module")
def site(database_url: str) -> str:
    name = "screens" + secrets.token_hex(3)

    async def load() -> None:
        conn = await db.connect(database_url)
        try:
            await db.add_site(conn, name, [], "USD")
            await insert_beacons(conn, with_inp(rows_of(name)) + campaign_rows(name),
                                 random.Random(24))
            await objectives.add(conn, name, "lcp_p75", "2500", None, ["channel=email"])
        finally:
            await conn.close()

    asyncio.run(load())
    return name



# Every laid-out element of the figures whose content is wider than its own box
# (scrollWidth > clientWidth) without scrolling it: something is cut or spills
# over its card. Then the scroll containers (overflow-x auto or scroll) that
# hide some of their text at this width: a container that hides only the
# padding of its last cells (its text's boxes all inside it) hides nothing.
GEOMETRY = """() => {
  const describe = (el) => {
    const card = el.closest('section[id], .tile');
    const classes = typeof el.className === 'string' ? el.className.trim().split(/\\s+/) : [];
    return `${card ? '#' + (card.id || card.dataset.tile) + ' ' : ''}${el.tagName.toLowerCase()}`
      + classes.filter(Boolean).map((name) => '.' + name).join('')
      + (el.dataset.col ? `[data-col=${el.dataset.col}]` : '')
      + `: ${el.scrollWidth} > ${el.clientWidth}`;
  };
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const hidesText = (el) => {
    el.scrollLeft = 0;
    const edge = el.getBoundingClientRect().right + 0.5;
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = document.createRange();
      text.selectNodeContents(node);
      if ([...text.getClientRects()].some((box) => box.width && box.right > edge)) return true;
    }
    return false;
  };
  const spilled = [];
  const scrolling = [];
  for (const el of document.querySelectorAll('#figures *')) {
    if (!el.clientWidth || el.closest('.sr-only, details:not([open]) > :not(summary)')) continue;
    if (el.scrollWidth <= el.clientWidth + 1) continue;
    if (!scrolls(el)) spilled.push(el);
    else if (hidesText(el)) scrolling.push(el);
  }
  const doc = document.documentElement;
  return {
    page: doc.scrollWidth - doc.clientWidth,
    spilled: spilled.map(describe),
    scrolling: scrolling.map((el, i) => {
      el.dataset.scrolling = i;  // for the test to find it again
      return {what: describe(el), card: el.closest('section[id]')?.id,
              selector: `[data-scrolling="${i}"]`};
    }),
  };
}"""


async def geometry(page: Page) -> dict[str, Any]:
    # Every <details> open: what it shows must fit too.
    await page.page.evaluate("document.querySelectorAll('#figures details')"
                             ".forEach((d) => { d.open = true; })")
    return await page.page.evaluate(GEOMETRY)  # type: ignore[no-any-return]


async def darkness(page: Page, box: dict[str, float], side: str) -> float:
    """How much darker than white, on average, the 8 px inside a side of `box`
    are as Chromium painted them (0: white; 255: black): the screenshot decoded
    by Chromium itself, on a blank page."""
    x = box["x"] if side == "left" else box["x"] + box["width"] - 8
    height = min(box["height"], page.page.viewport_size["height"] - box["y"])
    png = await page.page.screenshot(clip={"x": x, "y": box["y"], "width": 8, "height": height})
    blank = await page.page.context.new_page()
    try:
        return await blank.evaluate("""async (src) => {
          const image = new Image();
          image.src = src;
          await image.decode();
          const canvas = document.createElement('canvas');
          canvas.width = image.width; canvas.height = image.height;
          const context = canvas.getContext('2d');
          context.drawImage(image, 0, 0);
          const {data} = context.getImageData(0, 0, image.width, image.height);
          let sum = 0;
          for (let i = 0; i < data.length; i += 4) {
            sum += 255 - (data[i] + data[i + 1] + data[i + 2]) / 3;
          }
          return sum / (data.length / 4);
        }""", "data:image/png;base64," + base64.b64encode(png).decode())
    finally:
        await blank.close()


async def cue(page: Page, container: str, side: str) -> float:
    """How much the scroll container's cue darkens a side: that side painted as it
    is, less that side painted with the container's background (the cue) removed."""
    await page.page.locator(container).scroll_into_view_if_needed()
    box = await page.page.locator(container).bounding_box()
    shown = await darkness(page, box, side)
    await page.page.locator(container).evaluate("(el) => { el.style.background = 'none'; }")
    hidden = await darkness(page, box, side)
    await page.page.locator(container).evaluate("(el) => { el.style.background = ''; }")
    return shown - hidden


async def screenshot(page: Page, directory: Path, name: str) -> Path:
    path = directory / name
    await page.page.screenshot(path=path, full_page=True)
    shutil.copy(path, screenshot_path(name))
    return path


@pytest.mark.browser
@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
async def test_every_card_fits_a_desktop(browser: Any, collector: Collector, site: str,
                                         tmp_path: Path, locale: str) -> None:
    page = await open_dashboard(browser, collector, site, width=DESKTOP, height=1000,
                                locale=locale)
    found = await geometry(page)
    await screenshot(page, tmp_path, f"dashboard-{DESKTOP}-{locale[:2]}.png")
    assert page.errors == []
    assert found["page"] <= 0
    assert found["spilled"] == []
    # At 1,400 px nothing needs to scroll: the Releases card shows its conversion column.
    assert found["scrolling"] == []
    card = await page.page.locator("#releases").bounding_box()
    conversion = await page.page.locator(
        "#releases tr[data-release=r2] td[data-col=conversion_rate]").bounding_box()
    assert conversion["x"] + conversion["width"] <= card["x"] + card["width"]
    # Revenue in the site's currency, every figure whole.
    assert "(USD)" in await page.text("#campaigns th[data-sort=revenue]")
    assert "(USD)" in await page.text("#speed-worth .summary")
    for campaign, revenue in CAMPAIGNS.items():
        cell = f"#campaigns tr[data-campaign='{campaign}'] td[data-col=revenue]"
        written = f"{revenue:,.2f}"
        if locale == "fr-FR":  # "987 654 321,98", with narrow no-break spaces
            written = written.replace(",", "\u202f").replace(".", ",")
        assert await page.text(cell) == written


@pytest.mark.browser
@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
async def test_tables_scroll_with_a_cue_on_a_phone(browser: Any, collector: Collector, site: str,
                                                   tmp_path: Path, locale: str) -> None:
    page = await open_dashboard(browser, collector, site, width=PHONE, height=844, locale=locale)
    found = await geometry(page)
    await screenshot(page, tmp_path, f"dashboard-{PHONE}-{locale[:2]}.png")
    assert page.errors == []
    assert found["page"] <= 0  # the page itself never scrolls sideways
    assert found["spilled"] == []
    # The campaign table is wider than a phone: it scrolls inside its card...
    assert "campaigns" in {entry["card"] for entry in found["scrolling"]}
    for entry in found["scrolling"]:
        # ...and a shadow at the right edge says there is more; none at the left
        # edge before it has scrolled.
        scroll = entry["selector"]
        await page.page.locator(scroll).evaluate("(el) => { el.scrollLeft = 0; }")
        assert await cue(page, scroll, "right") > 3, entry["what"]
        assert await cue(page, scroll, "left") < 0.5, entry["what"]
        # Scrolled to its end, the cue moves to the left edge.
        await page.page.locator(scroll).evaluate("(el) => { el.scrollLeft = el.scrollWidth; }")
        assert await cue(page, scroll, "left") > 3, entry["what"]
        assert await cue(page, scroll, "right") < 0.5, entry["what"]
