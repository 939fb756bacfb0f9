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
import contextlib
import datetime as dt
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import orjson
import pytest

from collector import dashboard, db, proof
from tests.conftest import DASHBOARD_TOKEN, Collector
from tests.synthetic import insert_beacons
from tests.test_comparisons import page_view
from tests.test_dashboard import Page, fixed, open_dashboard, period, screenshot_path, \
    shown, shown_delta

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

async def until(condition: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
    """condition()'s first truthy answer, asked again until `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (answer := await condition()):
        assert time.monotonic() < deadline, "condition still false"
        await asyncio.sleep(0.1)
    return answer


async def test_proofs_are_computed_in_the_background_once_per_site(
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    gates: dict[str, asyncio.Event] = {}

    async def compute(site: str) -> dict[str, Any]:
        calls.append(site)
        gates[site] = asyncio.Event()
        await gates[site].wait()
        if site == "broken":
            raise RuntimeError("views unreachable")
        return {"comparisons": [len(calls)], "speed_worth": []}

    def opened(site: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return site in gates
        return check

    pending = {"proof": {"pending": True}, "comparisons": None, "speed_worth": None}
    cache = proof.ProofCache(compute, seconds=0.3, failure_seconds=0.3, computations=1)
    # At once, and pending: asked three times, computed once.
    assert [cache.current("shop") for _ in range(3)] == [pending] * 3
    await until(opened("shop"))
    # One computation at a time over every site: the other site waits its turn.
    assert cache.current("broken") == pending
    await asyncio.sleep(0.05)
    assert calls == ["shop"]
    gates["shop"].set()
    await until(opened("broken"))
    assert cache.current("shop") == {"proof": {"pending": False}, "comparisons": [1],
                                     "speed_worth": []}
    # A failure is logged, not raised, and answered as unavailable for a while.
    with caplog.at_level(logging.WARNING, logger="collector.proof"):
        gates["broken"].set()
        unavailable = {"proof": {"pending": False}, "comparisons": None, "speed_worth": None}
        await until(lambda: asyncio.sleep(0, cache.current("broken") == unavailable))
    assert any("views unreachable" in r.getMessage() + str(getattr(r, "error", ""))
               for r in caplog.records)
    assert calls == ["shop", "broken"]

    # Past its time, the answer is served stale while the next one is computed;
    # the failure is computed again (pending meanwhile).
    await asyncio.sleep(0.35)
    gates.clear()
    assert cache.current("shop") == {"proof": {"pending": False}, "comparisons": [1],
                                     "speed_worth": []}
    assert cache.current("broken") == pending
    await until(opened("shop"))
    gates["shop"].set()
    await until(opened("broken"))
    assert cache.current("shop")["comparisons"] == [3]
    # Closed (at shutdown): the computation running is cancelled, none starts.
    await cache.close()
    assert not gates["broken"].is_set()
    assert cache.current("other") == {"proof": {"pending": False}, "comparisons": None,
                                      "speed_worth": None}
    assert calls == ["shop", "broken", "shop", "broken"]


async def test_a_proof_past_its_timeout_is_unavailable_and_the_figures_do_not_wait(
        database_url: str, site: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Differences that outlast their statement timeout are logged and answered
    as unavailable (the page says so); the other figures never wait for them."""
    monkeypatch.setattr(dashboard, "PROOF_TIMEOUT", "1s")
    monkeypatch.setattr(proof, "COMPARISONS_QUERY", "SELECT pg_sleep(5), $1::text")
    pool = await db.create_pool(database_url)
    cache = proof.ProofCache(lambda name: dashboard.compute_proof(pool, name))
    try:
        with caplog.at_level(logging.WARNING, logger="collector.proof"):
            answer = await dashboard.scorecard(
                pool, dashboard.Filters(site, TODAY - dt.timedelta(days=13), TODAY), cache)
            assert answer["proof"] == {"pending": True}
            assert answer["comparisons"] is None and answer["speed_worth"] is None
            assert answer["period"]["current"]["page_views"] == 1220
            assert [r["release"] for r in answer["releases"]] == ["r3", "r2", "r1"]
            later = await until(lambda: asyncio.sleep(
                0, None if cache.current(site)["proof"]["pending"] else cache.current(site)))
        assert later == {"proof": {"pending": False}, "comparisons": None, "speed_worth": None}
        assert any("took too long" in r.getMessage() for r in caplog.records)
    finally:
        await cache.close()
        await pool.close()


# --- held by a lock, for real: the page comes at once and fills them in --------

@pytest.fixture
def fresh_collector(database_url: str, tmp_path: Path) -> Iterator[Collector]:
    """A collector that has computed no difference yet."""
    started = Collector(database_url, tmp_path / "collector.log", dashboard_token=DASHBOARD_TOKEN,
                        sites_refresh_seconds=1)
    yield started
    started.stop()


@contextlib.asynccontextmanager
async def comparisons_held(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """rum.comparisons' rollup locked by a transaction (as a long migration or a
    VACUUM FULL would): whoever reads the view waits until the block ends."""
    holder = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE binome.comparison_days IN ACCESS EXCLUSIVE MODE")
            yield holder
    finally:
        await holder.close()


async def proof_waiting(conn: asyncpg.Connection) -> bool:
    """The collector's proof statement is waiting for the lock."""
    return bool(await conn.fetchval(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE NOT l.granted AND l.relation = 'binome.comparison_days'::regclass"
        " AND a.query LIKE '%FROM rum.comparisons%'"))


async def test_the_figures_answer_while_the_proof_waits_and_a_poll_gets_it(
        database_url: str, site: str, conn: asyncpg.Connection,
        fresh_collector: Collector) -> None:
    auth = {"Authorization": f"Bearer {DASHBOARD_TOKEN}"}
    params = {"site": site, "from": str(TODAY - dt.timedelta(days=13)), "to": str(TODAY)}
    async with httpx.AsyncClient(base_url=fresh_collector.url, headers=auth,
                                 timeout=60) as client:
        async with comparisons_held(database_url) as holder:
            data = await client.get("/dashboard/data", params=params)
            assert data.status_code == 200, data.text
            figures = data.json()
            # Answered while the differences' statement still waits for the lock.
            assert await until(lambda: proof_waiting(holder))
            assert figures["proof"] == {"pending": True}
            assert figures["comparisons"] is None and figures["speed_worth"] is None
            assert figures["period"]["current"]["page_views"] == 1220
            polled = await client.get("/dashboard/proof", params={"site": site})
            assert polled.status_code == 200
            assert polled.json() == {"site": site, "proof": {"pending": True},
                                     "comparisons": None, "speed_worth": None}
            assert await proof_waiting(holder)

        async def computed() -> dict[str, Any] | None:
            answer = (await client.get("/dashboard/proof", params={"site": site})).json()
            return None if answer["proof"]["pending"] else answer  # type: ignore[no-any-return]

        answer = await until(computed)
        expected = [proof.as_dict(r) for r in await conn.fetch(proof.COMPARISONS_QUERY, site)]
        assert answer["comparisons"] == orjson.loads(orjson.dumps(expected))
        assert len(answer["speed_worth"]) == len(
            await conn.fetch(proof.SPEED_WORTH_QUERY, site)) > 0
        # The figures, shared for 30 s, carry the proof as known now.
        again = (await client.get("/dashboard/data", params=params)).json()
        assert again["proof"] == {"pending": False}
        assert again["comparisons"] == answer["comparisons"]
        # ?site= is required, and checked.
        for bad in ({}, {"site": "no such site!"}):
            refused = await client.get("/dashboard/proof", params=bad)
            assert refused.status_code == 400 and refused.json()["error"] == "bad_filter"
        assert (await client.get("/dashboard/proof", params={"site": site},
                                 headers={"Authorization": "Bearer wrong"})).status_code == 401


@pytest.mark.browser
async def test_the_page_says_the_differences_are_computed_then_shows_them(
        browser: Any, database_url: str, site: str, conn: asyncpg.Connection,
        fresh_collector: Collector) -> None:
    async def opened(locale: str) -> Page:
        context = await browser.new_context(locale=locale, viewport={"width": 1360,
                                                                     "height": 900})
        page = Page(await context.new_page())
        query = httpx.QueryParams({"token": DASHBOARD_TOKEN, **period(site)})
        await page.page.goto(f"{fresh_collector.url}/dashboard?{query}")
        await page.page.wait_for_selector("body[data-state=ready]", timeout=30_000)
        return page

    waiting = {"en": "The differences are being computed; they appear here in a moment.",
               "fr": "Les écarts sont en cours de calcul ; ils s’affichent ici dans un instant."}
    async with comparisons_held(database_url) as holder:
        pages = dict(zip(("en", "fr"), await asyncio.gather(opened("en-US"), opened("fr-FR")),
                         strict=True))
        assert await proof_waiting(holder)
        for lang, page in pages.items():
            assert await page.page.get_attribute("body", "data-proof") == "pending"
            for section in ("#comparisons", "#speed-worth"):
                assert await page.text(f"{section} .pending") == waiting[lang], (lang, section)
            assert await page.page.locator("#releases .difference").count() == 0
            # The rest of the page is there.
            assert await page.page.locator("#releases tr[data-release=r2]").count() == 1

    r2 = (await comparisons(conn, site))[("release", "r2", "lcp_p75")]
    for lang, page in pages.items():
        await page.page.wait_for_selector("body[data-proof=ready]", timeout=60_000)
        assert await page.page.locator(".pending").count() == 0
        assert await page.text(
            "#releases tr[data-release='r2'] td[data-col=lcp_p75] .difference") == (
            difference(r2, lang))
        assert await page.page.locator("#period-comparison tr[data-metric=lcp_p75]").count() == 1
        assert await page.page.locator("#speed-worth .summary").count() == 1
        assert page.errors == []
        await page.page.context.close()
