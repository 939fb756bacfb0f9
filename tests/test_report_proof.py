"""`binome report` prints the differences of rum.comparisons with their
interval and verdict, and what speed is worth (issue 21), on the issue's
fixture (tests/test_dashboard_proof.py): r2 = r1 − 500 ms, r3 of 20 page views."""

from __future__ import annotations

import datetime as dt
import random
import secrets

import asyncpg
from rich.console import Console

from collector import db
from collector.report import print_report
from collector.report_proof import difference, signed
from tests.synthetic import insert_beacons
from tests.test_dashboard_proof import rows_of


async def test_report_prints_differences_and_worth(database_url: str,
                                                   conn: asyncpg.Connection) -> None:
    site = "report" + secrets.token_hex(3)
    await db.add_site(conn, site, [])
    await insert_beacons(conn, rows_of(site), random.Random(6))
    console = Console(record=True, width=260, color_system=None)
    await print_report(database_url, site=site, days=14, console=console,
                       today=dt.datetime.now(dt.UTC).date())
    out = console.export_text()

    found = {(r["kind"], r["subject"], r["metric"]): r for r in await conn.fetch(
        "SELECT * FROM rum.comparisons WHERE site = $1", site)}
    r2 = found[("release", "r2", "lcp_p75")]
    written = difference("lcp_p75", r2["delta"], r2["delta_low"], r2["delta_high"])
    assert written.startswith("−500 ms (−") and " to −" in written
    assert "Differences with their 95 % interval" in out
    assert written in out and "better" in out
    assert "release r2" in out and "vs r1" in out
    # r3 against r2: 20 page views against 600, too few by 30.
    assert "too few: about 30 more page views needed" in out
    assert "too few: about 30 more sessions needed" in out
    # The week against the one before, and the variants against A.
    assert f"7 days from {dt.datetime.now(dt.UTC).date() - dt.timedelta(days=7)}" in out
    b = found[("ab_variant", "B", "cwv_good_pct")]
    assert difference("cwv_good_pct", b["delta"], b["delta_low"], b["delta_high"]) in out
    assert "variant B" in out and "vs A" in out

    whole = await conn.fetchrow(
        "SELECT * FROM rum.speed_worth WHERE site = $1 AND scope = 'site'", site)
    assert "What speed is worth" in out and "LCP over 2.5 s" in out
    assert (f"{signed(whole['extra_conversions'], 0)} ({signed(whole['extra_conversions_low'], 0)}"
            f" to {signed(whole['extra_conversions_high'], 0)})") in out
    assert "A correlation, not a proof" in out


def test_differences_are_written_in_their_unit() -> None:
    assert difference("lcp_p75", -340, -420.4, -259.6) == "−340 ms (−420 to −260)"
    assert difference("lcp_p75", -1234, -1500, -900) == "−1.23 s (−1.50 to −0.90)"
    assert difference("cls_p75", 0.02, -0.0004, 0.041) == "+0.020 (0.000 to +0.041)"
    assert difference("conversion_rate", 1.25, -0.4, 2.9) == "+1.2 pts (−0.4 to +2.9)"
    assert difference("inp_p75", 36, None, None) == "+36 ms"
    assert difference("inp_p75", None, None, None) == "–"
