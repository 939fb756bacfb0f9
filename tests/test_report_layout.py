"""`binome report` fits the screen (issue 24): at 80 columns, the width of a
pipe, no line is longer and no campaign name or figure is cut ("99.…"); an
unknown site and a period of no day are refused in one line; revenue is shown
in the site's currency. The real command, as a subprocess, on a fixture with
long campaign names and revenues in the hundreds of millions."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import re
import secrets
from collections.abc import Iterator

import asyncpg
import pytest
from rich.console import Console
from rich.text import Text

from collector import db, objectives
from collector.report_layout import BREAK, Row, fit
from tests.synthetic import _row, insert_beacons
from tests.test_cli import binome
from tests.test_dashboard_proof import rows_of

TODAY = dt.datetime.now(dt.UTC).date()
CAMPAIGNS = {
    # campaign name: revenue of its one converting page view
    "black-friday-2026-newsletter-segment-loyal-customers-reactivation-wave-2": 987654321.98,
    "spring-sale-retargeting-audience-cart-abandoners-last-30-days": 123456789.12,
}
# Box-drawing characters of rich's tables: the borders between cells.
CELL_BORDER = re.compile("[│┃]")


def campaign_rows(site: str) -> list[tuple[object, ...]]:
    rows = []
    for c, (campaign, revenue) in enumerate(CAMPAIGNS.items()):
        for i in range(60):
            received = dt.datetime.combine(TODAY - dt.timedelta(days=1), dt.time(9),
                                           dt.UTC) + dt.timedelta(seconds=100 * c + i)
            rows.append(_row(
                site=site, day=received.date(), pv=f"camp{c}-{i:03d}", seq=0, sid=f"cs{c}-{i:03d}",
                received_at=received, t0=received, consent="marketing", path="/landing",
                utm_source="newsletter", utm_medium="email", utm_campaign=campaign,
                channel="email", dims=json.dumps({"page_type": "landing"}),
                lcp=1800.0 + 40 * i, inp=120.0 + i, cls=0.02,
                event_count=1 if i == 0 else 0,
                events=json.dumps([{"name": "purchase", "value": revenue}]) if i == 0 else None,
                revenue=revenue if i == 0 else None))
    return rows


@pytest.fixture(scope="module")
def site(database_url: str) -> Iterator[str]:
    name = "screens" + secrets.token_hex(3)

    async def load() -> None:
        conn = await db.connect(database_url)
        try:
            await db.add_site(conn, name, [], "USD")
            await insert_beacons(conn, rows_of(name) + campaign_rows(name), random.Random(24))
            await objectives.add(conn, name, "lcp_p75", "2500", None, ["channel=email"])
        finally:
            await conn.close()

    asyncio.run(load())
    yield name


def column_text(output: str, header: str) -> str:
    """The text of the column under `header` in the tables of `output`, its rows'
    lines joined: what a name folded over several lines reads as once put back."""
    parts: list[str] = []
    index = None
    for line in output.splitlines():
        cells = [cell.strip() for cell in CELL_BORDER.split(line)]
        if line.startswith("┏"):  # a new table: its header says where the column is
            index = None
        elif line.startswith("┃") and header in cells:
            index = cells.index(header)
        elif line.startswith("│") and index is not None:
            parts.append(cells[index])
    return "".join(parts)


def test_report_fits_80_columns(database_url: str, site: str) -> None:
    done = binome("report", "--site", site, "--days", "14",
                  env={"BINOME_DATABASE_URL": database_url, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    too_long = [line for line in out.splitlines() if len(line) > 80]
    assert not too_long, "\n".join(too_long)
    assert "…" not in out  # rich's mark of a cut cell
    # Every section is there: objectives, scorecard, releases, differences, worth.
    for title in ("Objectives", "Shared scorecard", "Releases", "Differences", "What speed"):
        assert title in out
    # Long campaign names wrap, whole; revenues are printed in full, in the site's currency.
    campaigns = column_text(out, "campaign")
    for campaign, revenue in CAMPAIGNS.items():
        assert campaign in campaigns
        assert re.search(rf"(?<![\d,.]){re.escape(f'{revenue:,.2f}')}(?![\d])", out), revenue
    assert "(USD)" in out


def test_report_is_one_table_a_section_when_wide(database_url: str, site: str) -> None:
    done = binome("report", "--site", site, "--days", "14",
                  env={"BINOME_DATABASE_URL": database_url, "COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    assert "continued" not in done.stdout and "…" not in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 250
    assert list(CAMPAIGNS)[0] in done.stdout  # on one line


@pytest.mark.parametrize("width", [40, 60, 80, 100, 140])
def test_fit_keeps_every_label_and_figure_whole(width: int) -> None:
    name = "a-campaign-name-far-longer-than-any-column-" * 2
    rows = [Row((Text("email"), Text(name)),
                [Text(f"{10 ** 9 + i:,}.99"), Text(f"2,140 ms{BREAK}(12,345)"),
                 Text(f"{i * 7.5:.1f} %"), Text(f"+1.23 s{BREAK}(+0.90 to +1.50)")])
            for i in range(3)]
    console = Console(record=True, width=width, color_system=None)
    console.print(*fit("A title long enough to wrap at forty columns, as titles do",
                       ("channel", "campaign"), ("revenue (EUR)", "LCP p75 (n)", "conversion",
                                                 "difference"), rows, width))
    out = console.export_text()
    assert max(len(line) for line in out.splitlines()) <= width
    assert "…" not in out
    for i in range(3):
        assert f"{10 ** 9 + i:,}.99" in out
    tables = out.count("┏")
    assert tables >= 1 + (width < 100)  # narrow: the figures in several tables
    campaigns = "".join(column_text(out, header) for header in ("campaign", "campaig"))
    assert campaigns.count(name) == 3 * tables


def test_report_refuses_an_unknown_site(database_url: str) -> None:
    done = binome("report", "--site", "nope", env={"BINOME_DATABASE_URL": database_url})
    assert done.returncode == 2
    assert done.stderr.strip() == "binome: unknown site: nope"
    assert "no page views" not in done.stdout


@pytest.mark.parametrize("days", ["0", "-3"])
def test_report_refuses_a_period_of_no_day(days: str) -> None:
    # Refused before any database is opened or started.
    done = binome("report", "--days", days,
                  env={"BINOME_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"})
    assert done.returncode == 2
    assert done.stderr.strip() == f"binome: --days must be 1 or more (got {days})"
    assert done.stdout == ""


async def test_site_currency(fresh_database: str) -> None:
    env = {"BINOME_DATABASE_URL": fresh_database}
    assert binome("site", "add", "shop", env=env).returncode == 0
    bad = binome("site", "add", "shop", "--currency", "euro", env=env)
    assert bad.returncode == 2 and "ISO 4217" in bad.stderr
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await conn.fetchval("SELECT currency FROM rum.sites WHERE site = 'shop'") == "EUR"
        done = binome("site", "add", "shop", "--currency", "gbp", env=env)
        assert done.returncode == 0 and "revenue in GBP" in done.stdout
        # Adding an origin later keeps the currency.
        assert binome("site", "add", "shop", "--origin", "https://shop.example",
                      env=env).returncode == 0
        assert await conn.fetchval("SELECT currency FROM rum.sites WHERE site = 'shop'") == "GBP"
    finally:
        await conn.close()


async def test_revenue_of_sites_in_several_currencies_is_not_added_up(
        database_url: str, site: str) -> None:
    """Every site at once: the module's site is in USD, the session's demo in EUR."""
    from collector.report import print_report

    console = Console(record=True, width=200, color_system=None)
    await print_report(database_url, site=None, days=14, console=console)
    out = console.export_text()
    assert "(mixed" in out and "currencies)" in out  # the revenue column's header, wrapped
    assert "Revenue: the sites' currencies differ (EUR, USD); pass --site for one site's." in out
    for revenue in CAMPAIGNS.values():
        assert f"{revenue:,.2f}" not in out
