"""The shared scorecard page (GET /dashboard) and its figures (GET /dashboard/data).

A known data set for a site of its own: four weeks of page views inserted as
the collector would store them (enrich.to_record, so the enrichment is the
real one), plus today's posted through POST /beacon. Every figure the endpoint
and the page show is compared with the rum views read in SQL here. The page is
driven in Debian's Chromium; screenshots land in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import secrets
import shutil
import subprocess
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from collector import PROJECT_ROOT, dashboard, db
from collector.beacon_decoder import parse as parse_beacon
from collector.enrich import to_record
from collector.row import COLUMNS
from collector.maintenance import maintain
from tests.conftest import (
    DASHBOARD_TOKEN,
    DESKTOP_UA,
    MOBILE_UA,
    Collector,
    _create_database,
    _drop_database,
    folded,
    make_beacon,
    require,
    wait_for,
)

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
DASHBOARD = PROJECT_ROOT / "dashboard"
TODAY = dt.datetime.now(dt.UTC).date()
PERIOD_DAYS = 14
FIRST_DAY = TODAY - dt.timedelta(days=PERIOD_DAYS - 1)
PREVIOUS_FIRST_DAY = FIRST_DAY - dt.timedelta(days=PERIOD_DAYS)

# channel, campaign URL, referrer, weight: two readable campaign groups, one
# too small, search, direct.
SOURCES = [
    ("?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday", "", 5),
    ("?utm_source=facebook&utm_medium=paid_social&utm_campaign=summer-sale", "", 1),
    ("", "https://www.google.fr/", 4),
    ("", "", 3),
]


# --- the data set -----------------------------------------------------------

def _session(rng: random.Random, day: dt.date, site: str) -> list[tuple[dict[str, Any], str, str]]:
    """One session's beacons, each with the User-Agent and country it came with."""
    query, ref, _ = rng.choices(SOURCES, [s[2] for s in SOURCES])[0]
    consent = "marketing" if rng.random() < 0.7 else "performance"
    ua, slow = (MOBILE_UA, 1.5) if rng.random() < 0.6 else (DESKTOP_UA, 1.0)
    country = "FR" if rng.random() < 0.75 else "BE"
    age = (TODAY - day).days
    release = "2026.1" if age >= 24 else "2026.2" if age >= 6 else "2026.3"
    slow *= {"2026.1": 1.3, "2026.2": 1.1, "2026.3": 0.9}[release]
    start = dt.datetime.combine(day, dt.time(6), dt.UTC) + dt.timedelta(
        seconds=rng.uniform(0, 8 * 3600))
    if day == TODAY:  # today's beacons are posted now: t0 must be plausible
        start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=rng.uniform(60, 600))
    sid = "s" + secrets.token_hex(8)
    pages = rng.choice([1, 1, 2, 3])
    converts = consent == "marketing" and rng.random() < 0.25
    beacons = []
    for n in range(pages):
        lcp = round(rng.lognormvariate(7.6, 0.5) * slow, 1)
        metrics = [{"name": "LCP", "value": lcp},
                   {"name": "CLS", "value": round(rng.expovariate(9), 3)},
                   {"name": "FCP", "value": round(lcp * 0.6, 1)}, {"name": "TTFB", "value": 180}]
        if rng.random() < 0.8:
            metrics.append({"name": "INP", "value": round(rng.lognormvariate(4.9, 0.6) * slow)})
        t0 = start + dt.timedelta(seconds=30 * n)
        events = ([{"name": "purchase", "value": float(rng.randrange(20, 200)), "currency": "EUR"}]
                  if converts and n == pages - 1 else [])
        beacons.append((make_beacon(
            site=site, consent=consent, sid=sid, t0=t0.timestamp() * 1000, release=release,
            url=f"https://shop.example/{'' if n == 0 else 'p/42'}{query if n == 0 else ''}",
            ref=ref if n == 0 else "https://shop.example/", metrics=metrics, events=events,
        ), ua, country))
    return beacons


def data_set(site: str, seed: int = 8
             ) -> tuple[list[tuple[Any, ...]], list[tuple[dict[str, Any], str, str]]]:
    """(rows to COPY for the past days, beacons to POST for today)."""
    rng = random.Random(seed)
    rows: list[tuple[Any, ...]] = []
    posted: list[tuple[dict[str, Any], str, str]] = []
    for age in range(2 * PERIOD_DAYS):
        day = TODAY - dt.timedelta(days=age)
        for _ in range(rng.randint(5, 12)):
            for beacon, ua, country in _session(rng, day, site):
                if day == TODAY:
                    posted.append((beacon, ua, country))
                    continue
                received = dt.datetime.fromtimestamp(beacon["t0"] / 1000, dt.UTC) + dt.timedelta(
                    seconds=20)
                rows.append(to_record(parse_beacon(json.dumps(beacon).encode()), received, ua,
                                      country))
    return rows, posted


def load_site(database_url: str, name: str, rows: list[tuple[Any, ...]]) -> None:
    """Register site `name` and COPY its rows into binome.beacons, folded."""
    async def load() -> None:
        conn = await db.connect(database_url)
        try:
            await db.add_site(conn, name, [])
            for day in sorted({row[1] for row in rows}):
                await conn.execute("SELECT binome.ensure_beacon_partition($1)", day)
            await conn.copy_records_to_table("beacons", schema_name="binome", records=rows,
                                             columns=COLUMNS)
            await folded(conn)
        finally:
            await conn.close()

    asyncio.run(load())


@pytest.fixture(scope="module")
def site(database_url: str, live_server: str) -> str:
    """A site of its own in the session's database, loaded with the data set."""
    name = "dash" + secrets.token_hex(3)
    rows, posted = data_set(name)

    load_site(database_url, name, rows)
    asyncio.run(asyncio.sleep(1.2))  # the collector re-reads sites every second
    with httpx.Client(base_url=live_server) as client:
        for beacon, ua, country in posted:
            response = client.post("/beacon", content=json.dumps(beacon), headers={
                "Content-Type": "text/plain", "User-Agent": ua, "X-Country-Code": country})
            assert response.status_code == 204, response.text

    async def written() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            count = await wait_for(conn, "SELECT count(*) FROM binome.beacons WHERE site = $1",
                                   name, expect=len(rows) + len(posted))
            assert count == len(rows) + len(posted)
            await folded(conn)
        finally:
            await conn.close()

    asyncio.run(written())
    return name


@pytest.fixture(scope="module")
def other_site(database_url: str, live_server: str) -> str:
    """A second site, with other figures (the past days only), to switch to."""
    name = "other" + secrets.token_hex(3)
    rows, _ = data_set(name, seed=9)

    load_site(database_url, name, rows)
    return name



def period(site: str, **extra: str) -> dict[str, str]:
    return {"site": site, "from": FIRST_DAY.isoformat(), "to": TODAY.isoformat(), **extra}


def get_data(collector: Collector, **params: str) -> dict[str, Any]:
    response = httpx.get(collector.url + "/dashboard/data", params=params,
                         headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# --- the figures as the views give them --------------------------------------

# Independent of collector/dashboard.py: the figures as an analyst adds them
# up from the views (docs/analyst-guide.md, "Adding groups up"): counts
# (good / poor page views among them) summed over the rum.scorecard_daily
# groups of the period and filters, p75s by rum.p75_from_histogram over the
# summed bins of rum.scorecard_histograms. $1 site, $2 first day, $3 last day,
# $4 device class, $5 country.
def view_figures_sql(by: str = "") -> str:
    keys, group_by = (f"{by}, ", f"GROUP BY {by}") if by else ("", "")
    chosen = ("site = $1 AND day BETWEEN $2 AND $3 AND ($4::text IS NULL OR device_class = $4)"
              " AND ($5::text IS NULL OR country = $5)")

    def share(count: str, samples: str) -> str:
        return f"100.0 * sum({count}) / nullif(sum({samples}), 0)"

    metrics = ",\n".join(
        f"max(h.{m}_p75) AS {m}_p75,"
        f" sum({m}_samples) AS {m}_samples,"
        f" {share(f'{m}_good', f'{m}_samples')} AS {m}_good_pct,"
        f" {share(f'{m}_poor', f'{m}_samples')} AS {m}_poor_pct"
        for m in ("lcp", "inp", "cls"))
    return f"""
    WITH g AS (SELECT * FROM rum.scorecard_daily WHERE {chosen}),
    h AS (
        SELECT {keys}max(p75) FILTER (WHERE metric = 'lcp') AS lcp_p75,
               max(p75) FILTER (WHERE metric = 'inp') AS inp_p75,
               max(p75) FILTER (WHERE metric = 'cls') AS cls_p75
        FROM (SELECT {keys}metric, rum.p75_from_histogram(bin_lower, bin_upper, n) AS p75
              FROM (SELECT {keys}metric, bin_lower, bin_upper, sum(page_views)::bigint AS n
                    FROM rum.scorecard_histograms WHERE {chosen}
                    GROUP BY {keys}metric, bin_lower, bin_upper) AS summed_bins
              GROUP BY {keys}metric) AS per_metric
        {group_by})
    SELECT {keys}sum(page_views) AS page_views,
           coalesce(sum(page_views) FILTER (WHERE channel <> '(no consent)'), 0)
               AS marketing_page_views,
           sum(sessions) AS sessions,
           {metrics},
           {share('cwv_good', 'cwv_samples')} AS cwv_good_pct,
           100.0 * sum(conversions)
               / nullif(sum(sessions) FILTER (WHERE channel <> '(no consent)'), 0)
               AS conversion_rate,
           sum(revenue) AS revenue
    FROM g {f"LEFT JOIN h USING ({by})" if by else "CROSS JOIN h"}
    {group_by}"""


async def view_figures(conn: asyncpg.Connection, site: str, first: dt.date, last: dt.date,
                       device_class: str | None = None, country: str | None = None
                       ) -> dict[str, Any]:
    return dict(await conn.fetchrow(view_figures_sql(), site, first, last, device_class,
                                    country))


async def view_campaigns(conn: asyncpg.Connection, site: str, first: dt.date, last: dt.date,
                         device_class: str | None = None, country: str | None = None
                         ) -> list[asyncpg.Record]:
    return await conn.fetch(view_figures_sql("channel, utm_campaign"), site, first, last,
                            device_class, country)


async def all_time_consent_share(conn: asyncpg.Connection, site: str) -> float:
    """The share of the site's page views with marketing consent, every day,
    device and country: the span of rum.perf_vs_conversion and of the releases'
    figures."""
    return float(await conn.fetchval(
        "SELECT 100.0 * sum(page_views) FILTER (WHERE channel <> '(no consent)')"
        " / sum(page_views) FROM rum.scorecard_daily WHERE site = $1", site))


async def view_releases(conn: asyncpg.Connection, site: str, first: dt.date, last: dt.date
                        ) -> list[tuple[asyncpg.Record, asyncpg.Record | None]]:
    """The releases seen between first and last (newest first), each with the
    release first seen before it, from rum.release_comparison."""
    rows = await conn.fetch("SELECT * FROM rum.release_comparison WHERE site = $1"
                            " AND release <> '(none)' ORDER BY first_seen, release", site)
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
    return [(row, rows[i - 1] if i else None) for i, row in reversed(list(enumerate(rows)))
            if row["last_seen"] >= start and row["first_seen"] < end]


# The contract's definitions (section 6) over the period's page views, which
# the figures above must match: exactly for counts and shares (good / poor
# are bin edges), within one histogram bin for p75s. Sessions too: in this data
# set a session stays within one day, device, country and consent level, so
# the groups partition sessions and their sums are distinct counts.
RAW_PERIOD = """
SELECT count(*) AS page_views,
       count(*) FILTER (WHERE p.consent = 'marketing') AS marketing_page_views,
       count(DISTINCT p.sid) AS sessions,
       percentile_cont(0.75) WITHIN GROUP (ORDER BY p.lcp) AS lcp_p75,
       percentile_cont(0.75) WITHIN GROUP (ORDER BY p.inp) AS inp_p75,
       percentile_cont(0.75) WITHIN GROUP (ORDER BY p.cls) AS cls_p75,
       100.0 * count(*) FILTER (WHERE p.lcp <= 2500) / count(p.lcp) AS lcp_good_pct,
       100.0 * count(*) FILTER (WHERE p.lcp > 4000) / count(p.lcp) AS lcp_poor_pct,
       100.0 * count(*) FILTER (WHERE p.inp <= 200) / count(p.inp) AS inp_good_pct,
       100.0 * count(*) FILTER (WHERE p.inp > 500) / count(p.inp) AS inp_poor_pct,
       100.0 * count(*) FILTER (WHERE p.cls <= 0.1) / count(p.cls) AS cls_good_pct,
       100.0 * count(*) FILTER (WHERE p.cls > 0.25) / count(p.cls) AS cls_poor_pct,
       100.0 * count(*) FILTER (WHERE p.lcp <= 2500 AND p.cls <= 0.1
                                AND (p.inp IS NULL OR p.inp <= 200))
           / count(*) FILTER (WHERE p.lcp IS NOT NULL AND p.cls IS NOT NULL) AS cwv_good_pct,
       100.0 * count(DISTINCT p.sid) FILTER (WHERE p.consent = 'marketing' AND s.converted)
           / count(DISTINCT p.sid) FILTER (WHERE p.consent = 'marketing') AS conversion_rate
FROM rum.page_views_enriched p JOIN rum.sessions s USING (site, sid)
WHERE p.site = $1 AND p.day BETWEEN $2 AND $3
"""


def bin_width(metric: str, value: float) -> float:
    """Width of the rum.scorecard_histograms bin holding value (docs/analyst-guide.md)."""
    fine_step, fine_to, coarse_step = {"lcp": (100, 10000, 1000), "inp": (10, 1000, 100),
                                       "cls": (0.01, 1, 0.1)}[metric]
    return fine_step if value <= fine_to else coarse_step


def close(actual: Any, expected: Any) -> bool:
    if expected is None or actual is None or isinstance(expected, str):
        return actual == expected
    return abs(float(actual) - float(expected)) <= 1e-9 * max(1.0, abs(float(expected)))


def assert_figures(actual: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    for name, value in expected.items():
        assert close(actual[name], value), f"{where} {name}: {actual[name]} != {value}"


def assert_definitions_hold(figures: dict[str, Any], raw: dict[str, Any], where: str) -> None:
    """The period's figures against docs/beacon-format.md's "Definitions" over its page views."""
    for name, value in raw.items():
        metric = name.removesuffix("_p75")
        if metric in ("lcp", "inp", "cls"):
            width = max(bin_width(metric, value), bin_width(metric, figures[name]))
            assert abs(figures[name] - value) <= width, (where, name, figures[name], value)
        else:
            assert close(figures[name], value), (where, name, figures[name], value)


# The page writes figures as en-US Intl.NumberFormat does in V8: half away from
# zero on the shortest decimal that reads back as the number (repr's), not on
# its exact binary value: 3175 / 1000 is 3.17499999999999982... but "3.175",
# written 3.18.
def fixed(value: float, digits: int) -> str:
    rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return f"{rounded:,.{digits}f}"


def shown(kind: str, value: Any) -> str:
    if value is None:
        return "–"
    value = float(value)
    if kind == "cls":
        return fixed(value, 3)
    if kind in ("lcp", "inp"):
        return fixed(value / 1000, 2) + "\u00a0s" if value >= 1000 else fixed(value, 0) + "\u00a0ms"
    if kind == "pct":
        return fixed(value, 1) + "%"
    if kind == "money":
        return fixed(value, 2)
    return f"{int(value):,}"


def shown_delta(kind: str, delta: float) -> str:
    """A change as the page writes it: "+120 ms", "−0.020", "+1.5 pts"."""
    sign = "+" if delta > 0 else "−" if delta < 0 else "±"
    size = abs(delta)
    return sign + (fixed(size, 1) + "\u00a0pts" if kind == "pct" else shown(kind, size))


# CrUX thresholds and colours (web.dev/articles/vitals; PageSpeed Insights'
# fills, and darker shades for text), as Chromium reports CSS colours.
THRESHOLDS = {"lcp": (2500, 4000), "inp": (200, 500), "cls": (0.1, 0.25)}
FILL = {"good": "rgb(12, 206, 107)", "ni": "rgb(255, 164, 0)", "poor": "rgb(255, 78, 66)"}
TEXT = {"good": "rgb(10, 124, 66)", "ni": "rgb(163, 84, 0)", "poor": "rgb(200, 38, 26)"}


def rating(metric: str, value: Any) -> str | None:
    if value is None:
        return None
    good, poor = THRESHOLDS[metric]
    return "good" if value <= good else "ni" if value <= poor else "poor"


# --- the endpoint ------------------------------------------------------------

def test_page_and_data_need_the_token(collector: Collector, site: str) -> None:
    for path in ("/dashboard", "/dashboard/data"):
        assert httpx.get(collector.url + path).status_code == 401
        assert httpx.get(collector.url + path, params={"token": "wrong"}).status_code == 401
    # The page trades a token in its URL for a cookie (tests/test_access.py).
    assert httpx.get(collector.url + "/dashboard", params={"token": DASHBOARD_TOKEN, "site": site},
                     timeout=60).status_code == 303
    page = httpx.get(collector.url + "/dashboard", headers={"Authorization": f"Bearer {DASHBOARD_TOKEN}"})
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    # The assets are code and styles, no figures: no token needed, like /binome.js.
    for name in ("dashboard.js", "dashboard.css"):
        asset = httpx.get(f"{collector.url}/dashboard/assets/{name}")
        assert asset.status_code == 200
        assert asset.content == (DASHBOARD / "dist" / name).read_bytes()
        assert f"dashboard/assets/{name}?v=" in page.text


def test_bad_filters_are_400(collector: Collector, site: str) -> None:
    auth = {"Authorization": f"Bearer {DASHBOARD_TOKEN}"}
    for params in ({"from": "yesterday"}, {"from": "2026-03-02", "to": "2026-03-01"},
                   {"from": "2020-01-01", "to": "2026-01-01"},
                   # NUL cannot reach PostgreSQL's text (it was a 500, found by test_fuzz)
                   {"site": "demo\x00"}, {"site": "Not A Site"},
                   {"device_class": "mobile\x00"}, {"country": "F\x00"},
                   {"country": "x" * 65},
                   # the previous period's dates overflowed (a 500, issue 20)
                   {"from": "0001-01-01", "to": "0001-01-01"}, {"to": "9999-12-31"},
                   {"from": "1999-12-31", "to": "2000-01-01"}):
        response = httpx.get(collector.url + "/dashboard/data", params=params, headers=auth)
        assert response.status_code == 400 and response.json()["error"] == "bad_filter"


async def test_computations_at_once_are_bounded(collector: Collector, site: str,
                                               conn: asyncpg.Connection) -> None:
    """Issue 20: beyond dashboard.MAX_COMPUTATIONS filters computed at once, a JSON
    503 with Retry-After, not a queue on the pool. The computations are held by a
    lock on the sites they read first."""
    auth = {"Authorization": f"Bearer {DASHBOARD_TOKEN}"}
    days = [TODAY - dt.timedelta(days=n) for n in range(dashboard.MAX_COMPUTATIONS + 1)]
    async with httpx.AsyncClient(base_url=collector.url, headers=auth, timeout=60) as client:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("LOCK TABLE binome.sites IN ACCESS EXCLUSIVE MODE")
        try:
            held = [asyncio.ensure_future(client.get("/dashboard/data", params={
                "site": site, "from": day.isoformat(), "to": day.isoformat()}))
                for day in days[:-1]]
            await asyncio.sleep(1)
            busy = await client.get("/dashboard/data", params={
                "site": site, "from": days[-1].isoformat(), "to": days[-1].isoformat()})
        finally:
            await tx.rollback()
        assert busy.status_code == 503 and busy.json()["error"] == "busy"
        assert busy.headers["retry-after"] == str(dashboard.BUSY_RETRY_AFTER_SECONDS)
        assert [r.status_code for r in await asyncio.gather(*held)] == [200] * len(held)
        again = await client.get("/dashboard/data", params={
            "site": site, "from": days[-1].isoformat(), "to": days[-1].isoformat()})
        assert again.status_code == 200


async def test_period_figures_equal_the_views(collector: Collector, site: str,
                                              conn: asyncpg.Connection) -> None:
    data = get_data(collector, **period(site))
    assert data["filters"]["site"] == site and site in data["sites"]
    assert data["previous"] == {"from": PREVIOUS_FIRST_DAY.isoformat(),
                                "to": (FIRST_DAY - dt.timedelta(days=1)).isoformat()}
    # The page rates and greys with the collector's rules (collector/indicators.py).
    assert {m: tuple(data["thresholds"][m]) for m in THRESHOLDS} == THRESHOLDS
    assert data["too_small_page_views"] == 50
    periods = {"current": (FIRST_DAY, TODAY),
               "previous": (PREVIOUS_FIRST_DAY, FIRST_DAY - dt.timedelta(days=1))}
    for name, (first, last) in periods.items():
        expected = await view_figures(conn, site, first, last)
        assert expected["page_views"] > 150
        assert_figures(data["period"][name], expected, name)
        # Fourteen days of many groups: p75s from the summed histograms, which
        # are not the exact p75s, but within one bin of them.
        raw = dict(await conn.fetchrow(RAW_PERIOD, site, first, last))
        assert any(not close(expected[f"{m}_p75"], raw[f"{m}_p75"]) for m in ("lcp", "inp"))
        assert_definitions_hold(data["period"][name], raw, name)

    trend = data["period"]["trend"]
    assert [row["day"] for row in trend] == [
        (FIRST_DAY + dt.timedelta(days=i)).isoformat() for i in range(PERIOD_DAYS)]
    for row in trend:
        day = dt.date.fromisoformat(row["day"])
        assert_figures(row, await view_figures(conn, site, day, day), row["day"])
        assert_definitions_hold(row, dict(await conn.fetchrow(RAW_PERIOD, site, day, day)),
                                row["day"])

    campaigns = {(r["channel"], r["utm_campaign"]): dict(r)
                 for r in await view_campaigns(conn, site, FIRST_DAY, TODAY)}
    mine = data["period"]["campaigns"]
    assert len(mine) == len(campaigns) >= 4
    assert [r["page_views"] for r in mine] == sorted((r["page_views"] for r in mine),
                                                     reverse=True)
    for row in mine:
        expected = campaigns[(row["channel"], row["utm_campaign"])]
        assert_figures(row, expected, f"{row['channel']}/{row['utm_campaign']}")
        assert row["too_small"] == (expected["page_views"] < 50)
    assert any(r["too_small"] for r in data["period"]["campaigns"])

    for name in ("device_class", "country"):
        listed = await conn.fetch(
            f"SELECT {name} FROM rum.scorecard_daily WHERE site = $1 AND day BETWEEN $2 AND $3"
            f" GROUP BY {name} ORDER BY sum(page_views) DESC, {name}", site, FIRST_DAY, TODAY)
        key = "device_classes" if name == "device_class" else "countries"
        assert data["period"][key] == [r[name] for r in listed]


async def test_filtered_figures_equal_the_views(collector: Collector, site: str,
                                                conn: asyncpg.Connection) -> None:
    for device_class, country in (("mobile", None), ("desktop", "BE"), (None, "FR")):
        params = {k: v for k, v in (("device_class", device_class), ("country", country)) if v}
        data = get_data(collector, **period(site, **params))
        expected = await view_figures(conn, site, FIRST_DAY, TODAY, device_class, country)
        assert expected["page_views"] > 10, params
        assert_figures(data["period"]["current"], expected, str(params))
        # The filters choose the figures, not the lists offered to choose from.
        assert {"mobile", "desktop"} <= set(data["period"]["device_classes"])
        assert {"FR", "BE"} <= set(data["period"]["countries"])


async def test_one_day_campaign_rows_are_rum_scorecard_daily_rows(
    collector: Collector, site: str, conn: asyncpg.Connection
) -> None:
    """Over one day, one device class and one country a campaign row is a row of
    rum.scorecard_daily: the same counts and shares, and p75s read from the
    row's own histogram, within one bin of the row's exact p75s."""
    day = TODAY - dt.timedelta(days=3)
    groups = await conn.fetch(
        "SELECT device_class, country FROM rum.scorecard_daily WHERE site = $1 AND day = $2"
        " GROUP BY 1, 2 ORDER BY sum(page_views) DESC", site, day)
    assert len(groups) >= 2
    for device_class, country in groups:
        data = get_data(collector, site=site, **{"from": day.isoformat(), "to": day.isoformat()},
                        device_class=device_class, country=country)
        rows = await conn.fetch(
            "SELECT * FROM rum.scorecard_daily WHERE site = $1 AND day = $2"
            " AND device_class = $3 AND country = $4", site, day, device_class, country)
        assert rows
        by_group = {(r["channel"], r["utm_campaign"]): r for r in data["period"]["campaigns"]}
        assert set(by_group) == {(r["channel"], r["utm_campaign"]) for r in rows}
        for row in rows:
            mine = by_group[(row["channel"], row["utm_campaign"])]
            for name in ("page_views", "sessions", "lcp_good_pct", "inp_good_pct",
                         "cls_good_pct", "cwv_good_pct", "conversion_rate", "revenue",
                         "lcp_samples", "too_small"):
                assert close(mine[name], row[name]), (row["channel"], name, mine[name], row[name])
            for metric in ("lcp", "inp", "cls"):
                exact, estimate = row[f"{metric}_p75"], mine[f"{metric}_p75"]
                assert (exact is None) == (estimate is None)
                if exact is not None:
                    width = max(bin_width(metric, exact), bin_width(metric, estimate))
                    assert abs(estimate - exact) <= width, (row["channel"], metric)


async def test_releases_and_speed_are_the_views_rows(
    collector: Collector, site: str, conn: asyncpg.Connection
) -> None:
    data = get_data(collector, **period(site))
    views = {r["release"]: r for r in await conn.fetch(
        "SELECT * FROM rum.release_comparison WHERE site = $1", site)}
    # 2026.1 ended before the period; 2026.3 began in it, after 2026.2.
    assert [r["release"] for r in data["releases"]] == ["2026.3", "2026.2"]
    assert data["releases"][0]["previous"]["release"] == "2026.2"
    assert data["releases"][1]["previous"]["release"] == "2026.1"
    for release in data["releases"]:
        for row in (release, release["previous"]):
            view = views[row["release"]]
            for name in ("page_views", "lcp_p75", "inp_p75", "cls_p75", "cwv_good_pct",
                         "conversion_rate"):
                assert close(row[name], view[name]), (row["release"], name)
    speed = await conn.fetch(
        "SELECT * FROM rum.perf_vs_conversion WHERE site = $1 ORDER BY lcp_bucket_ms", site)
    assert [r["lcp_bucket_ms"] for r in data["speed"]] == [r["lcp_bucket_ms"] for r in speed]
    for mine, row in zip(data["speed"], speed, strict=True):
        for name in ("sessions", "conversions", "conversion_rate", "bounce_rate", "too_small"):
            assert close(mine[name], row[name]), (row["lcp_bucket_ms"], name)
    # Their consented share spans every day, device and country of the site,
    # before, in and after the period and the previous one.
    inside = {"from": (TODAY - dt.timedelta(days=10)).isoformat(),
              "to": (TODAY - dt.timedelta(days=3)).isoformat()}
    for params in (period(site), period(site, device_class="mobile", country="BE"),
                   {"site": site, **inside}, {"site": site, **inside, "country": "FR"}):
        all_time = get_data(collector, **params)["all_time"]
        assert close(100 * all_time["marketing_page_views"] / all_time["page_views"],
                     await all_time_consent_share(conn, site)), params
        assert all_time["page_views"] == await conn.fetchval(
            "SELECT count(*) FROM rum.page_views_enriched WHERE site = $1", site)


async def test_rolled_up_days_give_the_live_figures(server_url: str) -> None:
    """The same answer whether the period's days are computed live or read from
    their rollups: before `binome maintain`, after it rolled up every closed
    day (lag 0: all but today), and after a run as of tomorrow rolled up today."""
    url = await _create_database(server_url)
    conn = await db.connect(url)
    pool = None
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        name = "roll" + secrets.token_hex(3)
        await db.add_site(conn, name, [])
        rows, posted = data_set(name)
        now = dt.datetime.now(dt.UTC)
        rows += [to_record(parse_beacon(json.dumps(beacon).encode()), now, ua, country)
                 for beacon, ua, country in posted]
        for day in sorted({row[1] for row in rows}):
            await conn.execute("SELECT binome.ensure_beacon_partition($1)", day)
        await conn.copy_records_to_table("beacons", schema_name="binome", records=rows,
                                         columns=COLUMNS)
        pool = await db.create_pool(url)
        choices = [dashboard.Filters(name, FIRST_DAY, TODAY),
                   dashboard.Filters(name, FIRST_DAY, TODAY, "mobile", "FR"),
                   dashboard.Filters(name, TODAY - dt.timedelta(days=2), TODAY)]

        async def answers() -> list[dict[str, Any]]:
            return [await dashboard.scorecard(pool, filters) for filters in choices]

        async def live_page_views() -> int:
            return await conn.fetchval(  # type: ignore[no-any-return]
                "SELECT count(*) FROM binome.live_page_views WHERE site = $1", name)

        live = await answers()
        assert live[0]["period"]["current"]["page_views"] > 150
        all_page_views = await live_page_views()
        assert all_page_views == await conn.fetchval(
            "SELECT count(*) FROM rum.page_views_enriched WHERE site = $1", name)

        report = await maintain(conn, retention_months=1000, rollup_lag_days=0)
        assert report is not None and (name, TODAY - dt.timedelta(days=1)) in report.rolled_up
        assert 0 < await live_page_views() < all_page_views  # today only
        assert await answers() == live

        report = await maintain(conn, retention_months=1000, rollup_lag_days=0,
                                today=TODAY + dt.timedelta(days=1))
        assert report is not None and (name, TODAY) in report.rolled_up
        assert await live_page_views() == 0
        assert await answers() == live
    finally:
        if pool is not None:
            await pool.close()
        await conn.close()
        await _drop_database(server_url, url)


async def test_viewers_of_the_same_filters_share_one_computation(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str | None] = []

    async def computed(pool: Any, filters: dashboard.Filters, *_: Any) -> dict[str, Any]:
        calls.append(filters.site)
        await asyncio.sleep(0.05)
        if filters.site == "broken":
            raise RuntimeError("views unreachable")
        return {"n": len(calls), "filters": {"site": None}}  # no site: no proof to add

    monkeypatch.setattr(dashboard, "scorecard", computed)
    cache = dashboard.ScorecardCache(pool=None, seconds=0.2)  # type: ignore[arg-type]
    shop = dashboard.Filters("shop", FIRST_DAY, TODAY)
    assert [r["n"] for r in await asyncio.gather(*(cache.get(shop) for _ in range(3)))] == [1] * 3
    assert (await cache.get(shop))["n"] == 1  # within the cache time
    await asyncio.sleep(0.25)
    assert (await cache.get(shop))["n"] == 2  # counted from when it was done
    broken = dashboard.Filters("broken", FIRST_DAY, TODAY)
    for _ in range(2):  # a failure is not kept
        with pytest.raises(RuntimeError):
            await cache.get(broken)
    assert calls == ["shop", "shop", "broken", "broken"]


# --- the page in Chromium ----------------------------------------------------


class Page:
    """The dashboard in a fresh context, with every console error, page error and
    request it made."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

    async def texts(self, selector: str) -> list[str]:
        return await self.page.locator(selector).all_text_contents()  # type: ignore[no-any-return]

    async def text(self, selector: str) -> str:
        return await self.page.locator(selector).first.text_content()  # type: ignore[no-any-return]


async def open_dashboard(browser: Any, collector: Collector, site: str, *, locale: str = "en-US",
                         width: int = 1360, height: int = 900, **params: str) -> Page:
    context = await browser.new_context(locale=locale, timezone_id="Europe/Paris",
                                        viewport={"width": width, "height": height})
    page = Page(await context.new_page())
    query = httpx.QueryParams({"token": DASHBOARD_TOKEN, **period(site), **params})
    await page.page.goto(f"{collector.url}/dashboard?{query}")
    await page.page.wait_for_selector("body[data-state=ready]", timeout=30_000)
    await page.page.wait_for_selector("#trends canvas", timeout=5_000)
    # The differences are computed in the background (issue 21): the page fills them in.
    await page.page.wait_for_selector("body[data-proof]:not([data-proof=pending])",
                                      timeout=60_000)
    return page


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


async def assert_tiles(page: Page, conn: asyncpg.Connection, site: str, first: dt.date,
                       last: dt.date, device_class: str | None = None,
                       country: str | None = None) -> None:
    """The headline tiles and the consent notice against the views' figures for
    these filters, each with its change against the previous period."""
    days = (last - first).days + 1
    now = await view_figures(conn, site, first, last, device_class, country)
    before = await view_figures(conn, site, first - dt.timedelta(days=days),
                                first - dt.timedelta(days=1), device_class, country)
    assert now["page_views"] > 10 and before["page_views"] > 10

    def change(kind: str, name: str, lower_is_better: bool) -> str:
        delta = float(now[name]) - float(before[name])
        arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
        verdict = "" if delta == 0 else (
            " (better)" if (delta < 0) == lower_is_better else " (worse)")
        return f"{arrow} {shown_delta(kind, delta)}{verdict} vs previous {days} days"

    for metric in ("lcp", "inp", "cls"):
        tile = f"[data-tile={metric}]"
        assert await page.text(f"{tile} .figure") == shown(metric, now[f"{metric}_p75"])
        good = float(now[f"{metric}_good_pct"])
        poor = float(now[f"{metric}_poor_pct"])
        assert await page.text(f"{tile} [data-share=good]") == shown("pct", good) + " good"
        assert await page.text(f"{tile} [data-share=ni]") == shown(
            "pct", max(0.0, 100 - good - poor)) + " needs improvement"
        assert await page.text(f"{tile} [data-share=poor]") == shown("pct", poor) + " poor"
        assert await page.text(f"{tile} .change") == change(metric, f"{metric}_p75", True)
    for tile, name in (("cwv", "cwv_good_pct"), ("conversion", "conversion_rate")):
        assert await page.text(f"[data-tile={tile}] .figure") == shown("pct", now[name])
        assert await page.text(f"[data-tile={tile}] .change") == change("pct", name, False)
    consent = shown("pct", 100 * now["marketing_page_views"] / now["page_views"])
    assert await page.text("[data-tile=conversion] .consent") == (
        f"{consent} of page views have marketing consent")
    assert await page.text("#consent-notice") == (
        f"Marketing figures (campaigns, conversions, revenue) come from the {consent} of page"
        " views measured with marketing consent, not from every visitor.")
    assert await page.text("#period-label") == f"{site} · {first} → {last} ({days} d)"


async def assert_campaign_table(page: Page, rows: list[asyncpg.Record]) -> None:
    """Every row of the campaign table, figures and rating colours, against the views'."""
    shown_rows = await page.page.locator("#campaign-table tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.channel, r.dataset.campaign])")
    assert sorted(shown_rows) == sorted([r["channel"], r["utm_campaign"]] for r in rows)
    for row in rows:
        tr = (f"#campaign-table tr[data-channel='{row['channel']}']"
              f"[data-campaign='{row['utm_campaign']}']")
        cells = {name: await page.text(f"{tr} td[data-col={name}]") for name in (
            "page_views", "lcp_p75", "inp_p75", "cls_p75", "cwv_good_pct", "conversion_rate",
            "revenue")}
        small = row["page_views"] < 50
        assert cells["page_views"] == shown("count", row["page_views"]) + (
            "too few to read" if small else "")
        greyed = "too-small" in (await page.page.locator(tr).get_attribute("class") or "")
        assert greyed == small
        for metric in ("lcp", "inp", "cls"):
            value = row[f"{metric}_p75"]
            assert cells[f"{metric}_p75"] == shown(metric, value)
            # CrUX colours: the dot's fill, and the figure's text unless greyed.
            rated = rating(metric, value)
            assert rated is not None
            drawn = await page.page.locator(f"{tr} td[data-col={metric}_p75]").evaluate(
                "td => [td.className, td.style.color,"
                " td.querySelector('.dot')?.style.backgroundColor ?? null]")
            assert drawn == [f"num {rated}", "" if small else TEXT[rated], FILL[rated]], (
                row["channel"], row["utm_campaign"], metric, value)
        assert cells["cwv_good_pct"] == shown("pct", row["cwv_good_pct"])
        assert cells["conversion_rate"] == shown("pct", row["conversion_rate"])
        assert (row["conversion_rate"] is None) == (row["channel"] == "(no consent)")
        assert cells["revenue"] == shown("money", row["revenue"])


@pytest.mark.browser
async def test_page_shows_the_views_figures(browser: Any, collector: Collector, site: str,
                                            conn: asyncpg.Connection) -> None:
    page = await open_dashboard(browser, collector, site)
    await page.page.screenshot(path=screenshot_path("dashboard.png"), full_page=True)
    assert page.errors == []
    assert all(url.startswith(collector.url + "/") for url in page.requests), page.requests

    await assert_tiles(page, conn, site, FIRST_DAY, TODAY)
    # p75s over the period are read from histograms: the page says how close they are.
    assert "off by at most one bin (LCP 100 ms, INP 10 ms, CLS 0.01" in await page.text("footer")
    # The thresholds come with the figures (collector/indicators.py).
    assert "(LCP ≤ 2.5\u00a0s, INP ≤ 200\u00a0ms, CLS ≤ 0.1 are good)" in await page.text("footer")
    assert "within one bin" in await page.page.get_attribute("[data-tile=lcp] .value", "title")
    now = await view_figures(conn, site, FIRST_DAY, TODAY)
    consent = shown("pct", 100 * now["marketing_page_views"] / now["page_views"])
    assert await page.text("#campaigns .consent") == (
        f"Marketing figures (campaigns, conversions, revenue) come from the {consent} of page"
        " views measured with marketing consent, not from every visitor.")

    # The campaign table against the same figures of the views over the period.
    rows = await view_campaigns(conn, site, FIRST_DAY, TODAY)
    assert len(rows) >= 4 and any(r["page_views"] < 50 for r in rows)
    assert any(r["page_views"] >= 50 for r in rows)
    assert {rating(m, r[f"{m}_p75"]) for r in rows for m in ("lcp", "inp", "cls")} >= {
        "good", "ni"}
    await assert_campaign_table(page, rows)

    # Releases seen in the period, newest first, each beside the one before it;
    # every figure over the release's whole life, and its difference from the
    # previous release with rum.comparisons' interval and verdict (the writing
    # of differences: tests/test_dashboard_proof.py).
    releases = await view_releases(conn, site, FIRST_DAY, TODAY)
    assert [(r["release"], b["release"] if b else None) for r, b in releases] == [
        ("2026.3", "2026.2"), ("2026.2", "2026.1")]
    assert await page.page.locator("#releases tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.release)") == [r["release"] for r, _ in releases]
    compared = {(r["subject"], r["metric"]): r for r in await conn.fetch(
        "SELECT * FROM rum.comparisons WHERE site = $1 AND kind = 'release'", site)}
    for release, before in releases:
        assert before is not None
        tr = f"#releases tr[data-release='{release['release']}']"
        assert f"vs {before['release']}" in await page.text(f"{tr} th")
        assert await page.text(f"{tr} td[data-col=page_views]") == shown(
            "count", release["page_views"]) + ("too few to read" if release["too_small"] else "")
        for name, kind in (("lcp_p75", "lcp"), ("inp_p75", "inp"), ("cls_p75", "cls"),
                           ("cwv_good_pct", "pct"), ("conversion_rate", "pct")):
            td = f"{tr} td[data-col={name}]"
            value = release[name]
            assert value is not None
            assert (await page.text(td)).startswith(shown(kind, value)), (release["release"], name)
            comparison = compared[(release["release"], name)]
            assert comparison["baseline"] == before["release"]
            assert await page.page.get_attribute(f"{td} .difference", "data-verdict") == (
                comparison["verdict"])
            if kind != "pct":
                assert await page.page.get_attribute(td, "class") == f"num {rating(kind, value)}"
    # Release figures span each release's life: the consented share beside
    # them is the site's over all time, not the period's.
    all_time = shown("pct", await all_time_consent_share(conn, site))
    assert all_time != consent
    assert await page.text("#releases .consent") == (
        f"* {all_time} of page views since measuring began have marketing consent")

    # What speed costs: the figures table, the sentence and the consented share.
    speed = await conn.fetch(
        "SELECT * FROM rum.perf_vs_conversion WHERE site = $1 ORDER BY lcp_bucket_ms", site)
    assert await page.page.locator("#speed table.speed tbody tr").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.bucket))") == [
        r["lcp_bucket_ms"] for r in speed]
    for row in speed:
        tr = f"#speed tr[data-bucket='{row['lcp_bucket_ms']}']"
        assert await page.text(f"{tr} td[data-col=sessions]") == shown(
            "count", row["sessions"]) + ("too few to read" if row["too_small"] else "")
        assert await page.text(f"{tr} td[data-col=conversion_rate]") == shown(
            "pct", row["conversion_rate"])
        assert await page.text(f"{tr} td[data-col=bounce_rate]") == shown("pct", row["bounce_rate"])

    def pooled(rows: list[asyncpg.Record]) -> float:
        return 100 * sum(r["conversions"] for r in rows) / sum(r["sessions"] for r in rows)

    fast = pooled([r for r in speed if r["lcp_bucket_ms"] + 500 <= 2500])
    slow = pooled([r for r in speed if r["lcp_bucket_ms"] >= 4000])
    assert await page.text("#speed .summary") == (
        f"Sessions whose landing page loaded in under 2.5 s converted at {shown('pct', fast)};"
        f" those at 4 s or more at {shown('pct', slow)}.")
    assert await page.text("#speed .consent[data-consent-share]") == (
        f"{all_time} of page views since measuring began have marketing consent")

    # Trend charts, one per metric, each marking the releases first seen in the period.
    assert await page.page.locator("#trends canvas").count() == 3
    marks = [{"release": r["release"], "first_seen": r["first_seen"].astimezone(dt.UTC).date()
              .isoformat()} for r, _ in releases
             if r["first_seen"].astimezone(dt.UTC).date() >= FIRST_DAY]
    assert [m["release"] for m in marks] == ["2026.3"]
    for metric in ("lcp", "inp", "cls"):
        assert json.loads(await page.page.get_attribute(
            f"figure[data-trend={metric}]", "data-marks")) == marks


@pytest.mark.browser
async def test_campaign_table_sorts(browser: Any, collector: Collector, site: str) -> None:
    page = await open_dashboard(browser, collector, site)

    async def column(name: str) -> list[float]:
        values = await page.page.locator(
            f"#campaign-table td[data-col={name}]").evaluate_all(
            "cells => cells.map(c => c.dataset.value ?? null)")
        return [float(v) for v in values if v is not None]

    assert (await column("page_views")) == sorted(await column("page_views"), reverse=True)
    await page.page.click("#campaign-table th[data-sort=lcp_p75] button")
    assert (await column("lcp_p75")) == sorted(await column("lcp_p75"), reverse=True)
    await page.page.click("#campaign-table th[data-sort=lcp_p75] button")
    assert (await column("lcp_p75")) == sorted(await column("lcp_p75"))
    assert await page.page.get_attribute("#campaign-table th[data-sort=lcp_p75]",
                                         "aria-sort") == "ascending"
    assert page.errors == []


@pytest.mark.browser
async def test_filters_reload_the_figures(browser: Any, collector: Collector, site: str,
                                          other_site: str, conn: asyncpg.Connection) -> None:
    """Each filter, chosen on the page, brings the views' figures for it."""
    page = await open_dashboard(browser, collector, site)

    async def choose(select: str, value: str, wanted: dict[str, str | None]) -> None:
        await page.page.select_option(select, value)
        # The page's CSP forbids eval, so no wait_for_function: the change handler
        # sets the URL and data-state=loading at once, before the figures arrive.
        await page.page.wait_for_url(lambda url: all(
            httpx.URL(url).params.get(k) == v for k, v in wanted.items()))
        await page.page.wait_for_selector("body[data-state=ready]")
        assert "token" not in httpx.URL(page.page.url).params

    last7 = TODAY - dt.timedelta(days=6)
    await choose("#device_class", "mobile", {"device_class": "mobile"})
    await assert_tiles(page, conn, site, FIRST_DAY, TODAY, "mobile")
    await choose("#device_class", "", {"device_class": None})
    await choose("#country", "BE", {"country": "BE"})
    await assert_tiles(page, conn, site, FIRST_DAY, TODAY, None, "BE")
    await assert_campaign_table(page, await view_campaigns(conn, site, FIRST_DAY, TODAY,
                                                           None, "BE"))
    await choose("#period", "7", {"from": last7.isoformat(), "country": "BE"})
    await assert_tiles(page, conn, site, last7, TODAY, None, "BE")
    # Another site: its figures, over the same period, for every device and country.
    await choose("#site", other_site, {"site": other_site, "from": last7.isoformat(),
                                       "country": None})
    await assert_tiles(page, conn, other_site, last7, TODAY)
    await assert_campaign_table(page, await view_campaigns(conn, other_site, last7, TODAY))
    assert page.errors == []


@pytest.mark.browser
async def test_french_labels_and_numbers(browser: Any, collector: Collector, site: str,
                                         conn: asyncpg.Connection) -> None:
    page = await open_dashboard(browser, collector, site, locale="fr-FR")
    assert await page.page.get_attribute("html", "lang") == "fr"
    assert await page.text("h1") == "◐ Tableau de bord partagé"
    assert await page.text("[data-tile=conversion] h3") == "Taux de conversion"
    assert await page.text("#speed h2") == "Ce que coûte la lenteur"
    assert "consentement marketing" in await page.text("#consent-notice")
    assert (await page.text("#period-label")).endswith(f"({PERIOD_DAYS} j)")
    cwv = await page.text("[data-tile=cwv] .figure")
    assert cwv.endswith("\u202f%") and "," in cwv
    # The consented share beside "what speed costs" and the releases, in French.
    all_time = shown("pct", await all_time_consent_share(conn, site))
    all_time = all_time.replace(".", ",").replace("%", "\u202f%")
    sentence = f"{all_time} des pages vues depuis le début de la mesure avec consentement marketing"
    assert await page.text("#speed .consent[data-consent-share]") == sentence
    assert await page.text("#releases .consent") == "* " + sentence
    await page.page.screenshot(path=screenshot_path("dashboard-fr.png"), full_page=True)
    assert page.errors == []


@pytest.mark.browser
async def test_errors_and_noscript_in_the_browsers_language(browser: Any, collector: Collector,
                                                            site: str) -> None:
    query = httpx.QueryParams({"token": DASHBOARD_TOKEN, **period(site)})
    for locale, expected in (("en-US", "The figures could not be loaded: HTTP 502"),
                             ("fr-FR", "Impossible de charger les chiffres : réponse HTTP 502")):
        context = await browser.new_context(locale=locale)
        page = await context.new_page()
        # An answer without a JSON body, as a proxy in front of the collector gives.
        await page.route("**/dashboard/data?*", lambda route: route.fulfill(
            status=502, body="Bad Gateway", content_type="text/plain"))
        await page.goto(f"{collector.url}/dashboard?{query}")
        await page.wait_for_selector("body[data-state=error]", timeout=30_000)
        assert await page.locator("#status").text_content() == expected
        await context.close()
    # Without scripts the page cannot choose a language: it says it in both.
    context = await browser.new_context(locale="fr-FR", java_script_enabled=False)
    page = await context.new_page()
    await page.goto(f"{collector.url}/dashboard?{query}")
    assert await page.locator("main p[lang=fr]").text_content() == (
        "Cette page a besoin de JavaScript.")
    assert await page.locator("main p[lang=en]").text_content() == "This page needs JavaScript."
    await context.close()


@pytest.mark.browser
async def test_fits_a_phone_screen(browser: Any, collector: Collector, site: str) -> None:
    page = await open_dashboard(browser, collector, site, width=390, height=844)
    await page.page.screenshot(path=screenshot_path("dashboard-phone.png"), full_page=True)
    overflow = await page.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    assert page.errors == []


@pytest.mark.browser
async def test_sign_in_keeps_the_token_out_of_urls(browser: Any, collector: Collector,
                                                   site: str) -> None:
    """Issue 20: the sign-in form trades the token for an HttpOnly cookie, and the
    page's own requests for figures carry that cookie, not the token."""
    context = await browser.new_context()
    page = Page(await context.new_page())
    query = httpx.QueryParams(period(site))
    form = await page.page.goto(f"{collector.url}/dashboard?{query}")
    assert form is not None and form.status == 401
    await page.page.fill("input[name=token]", DASHBOARD_TOKEN)
    await page.page.click("button[type=submit]")
    await page.page.wait_for_selector("body[data-state=ready]", timeout=30_000)
    assert httpx.URL(page.page.url).path == "/dashboard"
    data = [url for url in page.requests if "/dashboard/data" in url]
    assert data and all(DASHBOARD_TOKEN not in url for url in page.requests)
    (cookie,) = await context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != DASHBOARD_TOKEN
    # Opened with ?token=, the page is left at once for the same page without it.
    page = await open_dashboard(browser, collector, site)
    assert "token" not in httpx.URL(page.page.url).params
    assert page.errors == []
    await context.close()


@pytest.mark.browser
async def test_a_site_without_page_views(browser: Any, collector: Collector,
                                         conn: asyncpg.Connection) -> None:
    empty = "empty" + secrets.token_hex(3)
    await db.add_site(conn, empty, [])
    page = await open_dashboard(browser, collector, empty)
    assert await page.text("#figures .empty") == "No page views in this period."
    assert await page.text("[data-tile=lcp] .figure") == "–"
    assert "No release was seen in this period." in await page.texts("#releases p")
    assert page.errors == []


async def test_tiles_say_how_many_page_views_each_metric_covers(
    browser: Any, collector: Collector, site: str, conn: asyncpg.Connection
) -> None:
    """Issue 22: the coverage line under each tile, from rum.metric_coverage."""
    data = get_data(collector, **period(site, device_class="mobile"))
    hand = await conn.fetchrow(
        "SELECT count(*) AS n, count(lcp) AS lcp, count(inp) AS inp, count(cls) AS cls"
        " FROM rum.page_views_enriched WHERE site = $1 AND day BETWEEN $2 AND $3"
        " AND device_class = 'mobile'", site, FIRST_DAY, TODAY)
    coverage = data["period"]["coverage"]
    for metric in ("lcp", "inp", "cls"):
        assert (coverage[metric]["page_views"], coverage[metric]["measured"]) == (
            hand["n"], hand[metric]), metric

    page = await open_dashboard(browser, collector, site)
    everything = get_data(collector, **period(site))["period"]["coverage"]
    for metric in ("lcp", "inp", "cls"):
        line = await page.text(f"[data-tile={metric}] [data-coverage]")
        assert line.startswith(f"{metric.upper()} measured on "
                               f"{shown('pct', everything[metric]['pct'])} of page views"), line
    assert page.errors == []
    french = await open_dashboard(browser, collector, site, locale="fr-FR")
    assert (await french.text("[data-tile=inp] [data-coverage]")).startswith("INP mesuré sur ")


def test_node_unit_tests_and_reproducible_build() -> None:
    npm = shutil.which("npm")
    require(npm is not None, "npm is not installed")
    assert npm is not None
    install = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=DASHBOARD,
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    # node --test rebuilds dist/ in memory and fails if the committed files differ.
    tests = subprocess.run([npm, "test"], cwd=DASHBOARD, capture_output=True, text=True,
                           timeout=300)
    assert tests.returncode == 0, (tests.stdout[-3000:], tests.stderr[-3000:])
