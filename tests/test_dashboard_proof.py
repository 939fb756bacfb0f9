"""Proof of gains on the scorecard page (issue 21), in Debian's Chromium: each
release, A/B variant and week difference written with its 95 % interval and
its verdict in words, in English and French; "too few" with the page views it
still needs; "what speed is worth" beside "what speed costs". Every figure is
checked against the views (rum.comparisons, rum.speed_worth) read here.

The issue's fixture: release r2's LCPs are r1's minus 500 ms (600 page views
each, r1 also variant A and the week before, r2 variant B and the last week);
r3 has 20 page views (variant C). Fast landers convert at 10 %, slow at 5 %.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import secrets
from collections.abc import Iterator
from typing import Any

import asyncpg
import numpy as np
import pytest

from collector import dashboard, db, proof
from tests.conftest import Collector
from tests.synthetic import insert_beacons
from tests.test_comparisons import page_view
from tests.test_dashboard import TOKEN, Page, fixed, open_dashboard, screenshot_path, shown, \
    shown_delta

TODAY = dt.datetime.now(dt.UTC).date()
TOO_SMALL = 50  # rum.too_small's threshold, checked against the view below


def rows_of(site: str) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(21)
    r1 = np.round(rng.lognormal(np.log(2600), 0.3, 600), 1)
    rows = []
    for release, variant, values, ago in (("r1", "A", r1, 10), ("r2", "B", r1 - 500, 3),
                                          ("r3", "C", r1[:20], 2)):
        day = TODAY - dt.timedelta(days=ago)
        for i, lcp in enumerate(values):
            # Fast landers convert one time in ten, slow ones one in twenty.
            converted = i % (10 if lcp <= 2500 else 20) == 0
            rows.append(page_view(site, f"{release}-{i}", day, release=release, variant=variant,
                                  lcp=float(lcp), converted=converted, seconds=i))
    return rows


@pytest.fixture(scope="module")
def site(database_url: str) -> str:
    name = "proof" + secrets.token_hex(3)

    async def load() -> None:
        conn = await db.connect(database_url)
        try:
            await db.add_site(conn, name, [])
            await insert_beacons(conn, rows_of(name), random.Random(5))
        finally:
            await conn.close()

    asyncio.run(load())
    return name


@pytest.fixture(scope="module")
def collector(database_url: str, site: str, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Collector]:
    started = Collector(database_url, tmp_path_factory.mktemp("proof") / "collector.log",
                        dashboard_token=TOKEN, sites_refresh_seconds=1)
    yield started
    started.stop()



# --- the page's writing, independent of dashboard/src -------------------------

KIND = {"lcp_p75": "lcp", "inp_p75": "inp", "cls_p75": "cls", "cwv_good_pct": "pct",
        "conversion_rate": "pct"}
WORDS = {"en": {"better": "better", "worse": "worse", "no change": "no clear change",
                "to": "to", "page views": "page views", "sessions": "sessions"},
         "fr": {"better": "meilleur", "worse": "moins bon", "no change": "pas de changement net",
                "to": "à", "page views": "pages vues", "sessions": "sessions"}}


def french(text: str) -> str:
    return (text.replace(",", "\u202f").replace(".", ",").replace("%", "\u202f%")
            .replace("pts", "pt"))


def signed(value: float, digits: int) -> str:
    text = fixed(abs(value), digits)
    if float(text.replace(",", "")) == 0:
        return text
    return ("−" if value < 0 else "+") + text


def difference(row: asyncpg.Record, lang: str) -> str:
    """"−500 ms (−560 to −440) better", as docs/analyst-guide.md asks the screens to say."""
    kind, delta = KIND[row["metric"]], row["delta"]
    text = "–" if delta is None else shown_delta(kind, delta)  # the fixture has no INP
    if row["delta_low"] is not None:
        divisor, digits = ((1, 3) if kind == "cls" else (1, 1) if kind == "pct"
                           else (1000, 2) if abs(delta) >= 1000 else (1, 0))
        text += (f" ({signed(row['delta_low'] / divisor, digits)} {{to}}"
                 f" {signed(row['delta_high'] / divisor, digits)})")
    if lang == "fr":
        text = french(text)
    words = WORDS[lang]
    text = text.replace("{to}", words["to"])
    if not row["subject_n"] and not row["baseline_n"]:
        verdict = ""  # not measured on either side: the difference alone ("–")
    elif row["verdict"] == "too few":
        n = sum(max(0, TOO_SMALL - n) for n in (row["subject_n"], row["baseline_n"]))
        unit = words["sessions" if row["metric"] == "conversion_rate" else "page views"]
        verdict = (f"too few: about {n} more {unit} needed" if lang == "en"
                   else f"trop peu : il faut environ {n} {unit} de plus")
    else:
        verdict = words[row["verdict"]]
    return f"{text} {verdict}".strip()


async def comparisons(conn: asyncpg.Connection, site: str) -> dict[tuple[str, str, str], Any]:
    rows = await conn.fetch("SELECT * FROM rum.comparisons WHERE site = $1", site)
    return {(r["kind"], r["subject"], r["metric"]): r for r in rows}


# --- the page -------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
async def test_differences_read_with_interval_and_verdict(
        browser: Any, collector: Collector, site: str, conn: asyncpg.Connection,
        locale: str) -> None:
    lang = locale[:2]
    assert await conn.fetchval("SELECT rum.too_small($1 - 1) AND NOT rum.too_small($1)",
                               TOO_SMALL)
    found = await comparisons(conn, site)
    page = await open_dashboard(browser, collector, site, locale=locale)
    await page.page.screenshot(path=screenshot_path(f"dashboard-proof-{lang}.png"),
                               full_page=True)
    assert page.errors == []

    # r2 against r1: 500 ms faster, and the page says so with its interval.
    r2 = found[("release", "r2", "lcp_p75")]
    assert (r2["verdict"], r2["delta"]) == ("better", pytest.approx(-500))
    cell = "#releases tr[data-release='r2'] td[data-col=lcp_p75] .difference"
    text = await page.text(cell)
    assert text.startswith("−500\u00a0ms (−") and text.endswith(
        " better" if lang == "en" else " meilleur")
    assert text == difference(r2, lang)
    assert await page.page.get_attribute(cell, "data-verdict") == "better"
    # The bare "+36 ms" change is gone: every release figure has its interval
    # or says it has too few.
    for release in ("r2", "r3"):
        for metric in KIND:
            row = found[("release", release, metric)]
            td = f"#releases tr[data-release='{release}'] td[data-col={metric}]"
            assert await page.text(f"{td} .difference") == difference(row, lang), (release, metric)
            value = shown(KIND[metric], row["subject_value"])
            assert (await page.text(td)).startswith(french(value) if lang == "fr" else value)
    # r3 (20 page views) against r2 (600): 30 more page views needed.
    r3 = await page.text("#releases tr[data-release='r3'] td[data-col=lcp_p75] .verdict")
    assert r3 == ("too few: about 30 more page views needed" if lang == "en"
                  else "trop peu : il faut environ 30 pages vues de plus")
    assert await page.text("#releases tr[data-release='r3'] td[data-col=conversion_rate]"
                           " .verdict") == (
        "too few: about 30 more sessions needed" if lang == "en"
        else "trop peu : il faut environ 30 sessions de plus")

    # The last 7 complete days against the 7 before (r2's week against r1's).
    period = {m: r for (k, _, m), r in found.items() if k == "period"}
    assert period["lcp_p75"]["verdict"] == "better"
    for metric, row in period.items():
        assert await page.text(
            f"#period-comparison tr[data-metric={metric}] td[data-col=difference]") == (
            difference(row, lang)), metric
    first = TODAY - dt.timedelta(days=7)
    assert str(first) in await page.text("#period-comparison h3")

    # A/B variants against A: B better, C too few.
    for variant in ("B", "C"):
        for metric in KIND:
            row = found[("ab_variant", variant, metric)]
            assert row["baseline"] == "A"
            assert await page.text(
                f"#ab-variants tr[data-variant={variant}] td[data-col={metric}]") == (
                difference(row, lang)), (variant, metric)


@pytest.mark.browser
async def test_what_speed_is_worth_beside_what_it_costs(
        browser: Any, collector: Collector, site: str, conn: asyncpg.Connection) -> None:
    rows = {(r["scope"], r["scope_value"]): r for r in await conn.fetch(
        "SELECT * FROM rum.speed_worth WHERE site = $1", site)}
    whole = rows[("site", "(all)")]
    assert whole["extra_conversions"] > 0 and not whole["too_small"]
    page = await open_dashboard(browser, collector, site)
    # Beside "what speed costs", in the same row of cards.
    assert await page.page.locator(".pair > #speed + #speed-worth").count() == 1

    def estimate(value: float, low: float, high: float, digits: int) -> str:
        return f"{signed(value, digits)} ({signed(low, digits)} to {signed(high, digits)})"

    conversions = estimate(whole["extra_conversions"], whole["extra_conversions_low"],
                           whole["extra_conversions_high"], 0)
    # The fixture's events carry no value: revenue 0, and no revenue sentence.
    assert whole["revenue_per_conversion"] == 0
    assert await page.text("#speed-worth .summary") == (
        f"Had the {whole['slow_sessions']:,} sessions that landed on a page slower than"
        f" 2.5\u00a0s converted like those on faster pages"
        f" ({shown('pct', whole['fast_conversion_rate'])} instead of"
        f" {shown('pct', whole['slow_conversion_rate'])}), the last 28 days would have had"
        f" {conversions} conversions.")
    assert await page.text("#speed-worth .caveat") == (
        "A correlation, not a proof: slow and fast sessions also differ in campaign, device"
        " and intent.")
    # Per channel and campaign (the fixture's sessions carry none).
    tr = "#speed-worth tr[data-scope=channel][data-value='(none)']"
    assert await page.text(f"{tr} td[data-col=extra_conversions]") == conversions
    assert await page.text(f"{tr} td[data-col=extra_revenue]") == "–"
    assert page.errors == []

    french_page = await open_dashboard(browser, collector, site, locale="fr-FR")
    assert await french_page.text("#speed-worth h2") == "Ce que vaut la vitesse"
    summary = await french_page.text("#speed-worth .summary")
    assert summary.startswith(f"Si les {whole['slow_sessions']} sessions arrivées")
    assert french(conversions).replace("\u202f", "").replace(" to ", " à ") in summary
    assert (await french_page.text("#speed-worth .caveat")).startswith(
        "Une corrélation, pas une preuve")


# --- the figures behind them ------------------------------------------------------

async def test_proofs_are_computed_once_per_site_and_failures_forgotten() -> None:
    calls: list[str] = []

    def compute(site: str) -> Any:
        async def run() -> dict[str, Any]:
            calls.append(site)
            await asyncio.sleep(0.05)
            if site == "broken":
                raise RuntimeError("views unreachable")
            return {"n": len(calls)}
        return run

    cache = proof.ProofCache(seconds=0.2)
    assert await asyncio.gather(*(cache.get("shop", compute("shop")) for _ in range(3))) == [
        {"n": 1}] * 3
    assert await cache.get("shop", compute("shop")) == {"n": 1}  # within the cache time
    await asyncio.sleep(0.25)
    assert await cache.get("shop", compute("shop")) == {"n": 2}
    for _ in range(2):  # a failure is not kept
        with pytest.raises(RuntimeError):
            await cache.get("broken", compute("broken"))
    assert calls == ["shop", "shop", "broken", "broken"]


async def test_slow_proofs_leave_the_rest_of_the_page(database_url: str, site: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Differences that outlast the statement timeout come back as None (the page
    says they took too long); the other figures are there."""
    monkeypatch.setattr(dashboard, "PROOF_TIMEOUT", "1s")
    monkeypatch.setattr(proof, "COMPARISONS_QUERY", "SELECT pg_sleep(5), $1::text")
    pool = await db.create_pool(database_url)
    try:
        answer = await dashboard.scorecard(
            pool, dashboard.Filters(site, TODAY - dt.timedelta(days=13), TODAY), proof.ProofCache())
    finally:
        await pool.close()
    assert answer["comparisons"] is None and answer["speed_worth"] is None
    assert answer["period"]["current"]["page_views"] == 1220
    assert [r["release"] for r in answer["releases"]] == ["r3", "r2", "r1"]
