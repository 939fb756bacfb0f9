"""Shared objectives (contract section 7, issue 21): rum.objectives and
rum.objective_weeks on the real PostgreSQL, `binome objective` as a real
subprocess, alerts POSTed to a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import numpy as np
import pytest

from collector import objectives
from collector.maintenance import periodic_maintenance
from tests.conftest import settings_for
from tests.synthetic import _row, insert_beacons
from tests.test_cli import binome


class Receiver:
    """A webhook on 127.0.0.1: answers 500 to the first `failures` POSTs (every
    one when None... see always_fail), records the documents it accepted."""

    def __init__(self, failures: int = 0, always_fail: bool = False, delay: float = 0.0) -> None:
        self.failures = failures
        self.always_fail = always_fail
        self.delay = delay
        self.attempts = 0
        self.documents: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                with receiver.lock:
                    receiver.attempts += 1
                    fail = receiver.always_fail or receiver.attempts <= receiver.failures
                    if not fail:
                        receiver.documents.append(json.loads(body))
                self.send_response(500 if fail else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def page_view(site: str, pv: str, day: dt.date, *, lcp: float | None, sid: str | None = None,
              seq: int = 0, seconds: int = 0, channel: str = "search",
              campaign: str | None = None, consent: str = "marketing",
              converted: bool = False, page_type: str = "home", cls: float = 0.01,
              inp: float | None = None) -> tuple[Any, ...]:
    received = dt.datetime.combine(day, dt.time(1), dt.UTC) + dt.timedelta(seconds=seconds)
    marketing = consent == "marketing"
    return _row(site=site, day=day, pv=pv, seq=seq, sid=sid or "s" + pv, received_at=received,
                t0=received, consent=consent, path="/", release=None,
                channel=channel if marketing else None,
                utm_campaign=campaign if marketing else None,
                dims=json.dumps({"page_type": page_type}), lcp=lcp, cls=cls, inp=inp,
                device_class="mobile", country="FR",
                event_count=1 if converted and marketing else 0,
                events=json.dumps([{"name": "purchase"}]) if converted and marketing else None)


def release_fixture(site: str) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    """The issue's fixture over the last 28 days: r1's LCPs mostly above 2.5 s,
    r2's the same minus 500 ms, 600 page views each."""
    rng = np.random.default_rng(21)
    r1 = np.round(rng.lognormal(np.log(3400), 0.3, 600), 1)
    day = today() - dt.timedelta(days=3)
    rows = []
    for name, values in (("r1", r1), ("r2", r1 - 500)):
        rows += [page_view(site, f"{name}-{i}", day, lcp=float(v), seconds=i)
                 for i, v in enumerate(values)]
    return rows, np.concatenate([r1, r1 - 500])


async def objective(conn: asyncpg.Connection, name: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM rum.objectives WHERE name = $1", name)
    assert row is not None
    return row


async def test_an_lcp_objective_is_missed_posted_once_then_met(
        fresh_database: str, receiver: Receiver) -> None:
    """The issue's done-when: lcp_p75 <= 2500 on the release fixture is missed;
    `binome objective check` exits 1 and posts once, nothing on a second run;
    once the data meet it, one more post (met, previous missed)."""
    env = {"BINOME_DATABASE_URL": fresh_database}
    assert binome("site", "add", "obj", env=env).returncode == 0
    added = binome("objective", "add", "obj", "lcp_p75", "2500", env=env)
    assert added.returncode == 0, added.stderr
    # Its first check, at once: no page view yet.
    assert "obj-lcp_p75: too few: lcp_p75 –" in added.stdout, added.stdout
    conn = await asyncpg.connect(fresh_database)
    try:
        rows, values = release_fixture("obj")
        await insert_beacons(conn, rows, random.Random(1))
        found = await objective(conn, "obj-lcp_p75")
        assert (found["status"], found["n"], found["target"]) == ("missed", 1200, 2500)
        # The value is percentile_cont's; the interval rum.p75_interval's (the
        # same method as rum.comparisons), around the value and above the target.
        assert found["value"] == pytest.approx(np.percentile(values, 75))
        assert 2500 < found["value_low"] < found["value"] < found["value_high"]

        env["BINOME_ALERT_WEBHOOK_URL"] = receiver.url
        first = binome("objective", "check", env=env)
        assert first.returncode == 1, first.stderr
        assert "obj-lcp_p75: missed" in first.stdout
        assert receiver.url not in first.stdout + first.stderr
        assert len(receiver.documents) == 1
        document = receiver.documents[0]
        assert {k: document[k] for k in ("site", "objective", "metric", "target", "status",
                                         "previous_status")} == {
            "site": "obj", "objective": "obj-lcp_p75", "metric": "lcp_p75", "target": 2500,
            "status": "missed", "previous_status": None}
        assert document["value"] == pytest.approx(found["value"])
        assert "obj-lcp_p75" in document["text"] and "missed" in document["text"]
        assert "\n" not in document["text"]

        second = binome("objective", "check", env=env)
        assert second.returncode == 1 and len(receiver.documents) == 1

        # Every page view reports a final LCP (a later seq) 2 s lower.
        await insert_beacons(conn, [page_view("obj", f"{name}-{i}", today() - dt.timedelta(days=3),
                                              lcp=float(v) - 2000 if v > 2000 else float(v) / 2,
                                              seq=1, seconds=i)
                                    for name, half in (("r1", values[:600]), ("r2", values[600:]))
                                    for i, v in enumerate(half)], random.Random(2))
        assert (await objective(conn, "obj-lcp_p75"))["status"] == "met"
        third = binome("objective", "check", env=env)
        assert third.returncode == 0, third.stderr
        assert [(d["status"], d["previous_status"]) for d in receiver.documents] == [
            ("missed", None), ("met", "missed")]
        assert binome("objective", "check", env=env).returncode == 0
        assert len(receiver.documents) == 2
    finally:
        await conn.close()


async def test_a_scope_narrows_the_value(conn: asyncpg.Connection) -> None:
    """Email visitors land on fast pages, search visitors on slow ones: a channel,
    a campaign or landing pages each get their own value."""
    site = "obj-scope"
    await conn.execute("INSERT INTO binome.sites (site) VALUES ($1) ON CONFLICT DO NOTHING", site)
    day = today() - dt.timedelta(days=1)
    rows = []
    for i in range(300):
        rows.append(page_view(site, f"e{i}", day, lcp=1000 + i, channel="email",
                              campaign="spring", seconds=i))
        rows.append(page_view(site, f"q{i}", day, lcp=4000 + i, channel="search", seconds=i))
        # A second page view of each email session: not a landing page view,
        # counted in the session's channel.
        rows.append(page_view(site, f"e{i}b", day, lcp=9000, sid=f"se{i}", channel="search",
                              seconds=1000 + i))
    await insert_beacons(conn, rows, random.Random(3))
    for name, where in (("scope-all", []), ("scope-email", ["channel=email"]),
                        ("scope-spring", ["utm_campaign=spring"]),
                        ("scope-email-landing", ["channel=email", "landing=true"]),
                        ("scope-other-page", ["page_type=product"])):
        await objectives.add(conn, site, "lcp_p75", "2500", name, where)
    values = {r["name"]: r for r in await conn.fetch("SELECT * FROM rum.objectives WHERE site = $1", site)}
    email_lcps = [1000 + i for i in range(300)] + [9000] * 300
    assert values["scope-email"]["value"] == pytest.approx(np.percentile(email_lcps, 75))
    assert values["scope-spring"]["value"] == values["scope-email"]["value"]
    assert values["scope-email-landing"]["value"] == pytest.approx(
        np.percentile([1000 + i for i in range(300)], 75))
    assert values["scope-email-landing"]["status"] == "met"
    assert values["scope-all"]["n"] == 900 and values["scope-email"]["n"] == 600
    assert values["scope-email-landing"]["n"] == 300
    assert values["scope-all"]["status"] == "missed"
    assert (values["scope-other-page"]["n"], values["scope-other-page"]["status"]) == (0, "too few")
    assert json.loads(values["scope-email-landing"]["scope"]) == {"channel": "email",
                                                                  "landing": True}


async def test_percentages_conversion_and_weeks(conn: asyncpg.Connection) -> None:
    """cwv_good_pct and conversion_rate with Wilson's interval (rum.wilson_interval,
    as rum.comparisons); 'at risk' when the target lies inside the interval;
    rum.objective_weeks has the 8 weeks, each week's value."""
    site = "obj-pct"
    await conn.execute("INSERT INTO binome.sites (site) VALUES ($1) ON CONFLICT DO NOTHING", site)
    now = today()
    rows = [page_view(site, f"p{i}", now, lcp=2000 if i % 4 else 3000, converted=i % 10 == 0,
                      seconds=i) for i in range(400)]
    # Three weeks back: a week of its own in the trend, outside the 28 days.
    old_day = now - dt.timedelta(days=40)
    rows += [page_view(site, f"old{i}", old_day, lcp=5000, seconds=i) for i in range(60)]
    await insert_beacons(conn, rows, random.Random(4))
    await objectives.add(conn, site, "cwv_good_pct", "75", "pct-cwv", [])
    await objectives.add(conn, site, "conversion_rate", "5", "pct-conv", [])
    await objectives.add(conn, site, "conversion_rate", "10", "pct-conv-risk", [])
    found = {r["name"]: r for r in await conn.fetch("SELECT * FROM rum.objectives WHERE site = $1", site)}
    cwv = found["pct-cwv"]
    assert (cwv["value"], cwv["n"]) == (75.0, 400)
    low, high = await conn.fetchval("SELECT rum.wilson_interval(300, 400)")
    assert (cwv["value_low"], cwv["value_high"]) == pytest.approx((100 * low, 100 * high))
    assert cwv["status"] == "at risk"
    assert (found["pct-conv"]["value"], found["pct-conv"]["status"]) == (10.0, "met")
    assert found["pct-conv-risk"]["status"] == "at risk"

    weeks = await conn.fetch("SELECT week_start, value, n FROM rum.objective_weeks"
                             " WHERE site = $1 AND name = 'pct-cwv' ORDER BY week_start", site)
    monday = now - dt.timedelta(days=now.weekday())
    assert [w["week_start"] for w in weeks] == [monday - dt.timedelta(weeks=7 - i)
                                                for i in range(8)]
    by_week = {w["week_start"]: (w["value"], w["n"]) for w in weeks}
    assert by_week[monday] == (75.0, 400)
    old_monday = old_day - dt.timedelta(days=old_day.weekday())
    assert by_week[old_monday] == (0.0, 60)
    assert sum(n for _, n in by_week.values()) == 460


async def test_a_webhook_failing_twice_then_answering_gets_one_document(
        conn: asyncpg.Connection) -> None:
    hook = Receiver(failures=2)
    try:
        await _one_objective(conn, "obj-retry")
        report = await objectives.check(conn, hook.url, attempts=4, first_delay=0.05)
        assert hook.attempts == 3
        assert [d["objective"] for d in hook.documents] == ["obj-retry-cls"]
        assert ("obj-retry-cls", None, "met") in report.posted
        assert await conn.fetchval("SELECT notified_status FROM binome.objectives"
                                   " WHERE name = 'obj-retry-cls'") == "met"
    finally:
        await conn.execute("DELETE FROM binome.objectives WHERE site = 'obj-retry'")
        hook.close()


async def test_a_webhook_always_failing_leaves_the_change_for_the_next_check(
        conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture) -> None:
    hook = Receiver(always_fail=True)
    try:
        await _one_objective(conn, "obj-down")
        with caplog.at_level(logging.DEBUG):
            report = await objectives.check(conn, hook.url, attempts=3, first_delay=0.01)
        assert hook.attempts == 3 and hook.documents == []
        # Each failure is logged, the URL (the webhook's credential) never.
        failures = [r for r in caplog.records if r.getMessage() == "webhook POST failed"]
        assert len(failures) == 3 and failures[0].__dict__["reason"] == "HTTP 500"
        assert "secret-token" not in repr([r.__dict__ for r in caplog.records])
        assert ("obj-down-cls", None, "met") in report.undelivered
        assert await conn.fetchval("SELECT notified_status FROM binome.objectives"
                                   " WHERE name = 'obj-down-cls'") is None
        hook.always_fail = False
        report = await objectives.check(conn, hook.url, attempts=3, first_delay=0.01)
        assert [(d["objective"], d["previous_status"]) for d in hook.documents] == [
            ("obj-down-cls", None)]
    finally:
        await conn.execute("DELETE FROM binome.objectives WHERE site = 'obj-down'")
        hook.close()


async def test_two_checks_at_once_post_a_change_once(database_url: str,
                                                     conn: asyncpg.Connection) -> None:
    """The row lock: the second check waits for the first's POST, then finds the
    status delivered."""
    hook = Receiver(delay=0.3)
    other = await asyncpg.connect(database_url)
    try:
        await _one_objective(conn, "obj-race")
        await asyncio.gather(objectives.check(conn, hook.url), objectives.check(other, hook.url))
        assert [d["objective"] for d in hook.documents].count("obj-race-cls") == 1
    finally:
        await conn.execute("DELETE FROM binome.objectives WHERE site = 'obj-race'")
        await other.close()
        hook.close()


async def test_the_maintenance_loop_checks_and_survives_a_failing_webhook(
        database_url: str, conn: asyncpg.Connection) -> None:
    """`binome serve`'s periodic maintenance posts the change without a cron; a
    webhook that refuses every POST does not stop the loop."""
    hook = Receiver(failures=4)  # the first check's attempts all fail
    try:
        await _one_objective(conn, "obj-loop")
        await conn.execute("UPDATE binome.objectives SET checked_at = NULL, status = NULL"
                           " WHERE site = 'obj-loop'")
        settings = settings_for(database_url, alert_webhook_url=hook.url,
                                objective_check_minutes=0.01, maintenance_minutes=0,
                                live_snapshot_seconds=0)
        async with periodic_maintenance(database_url, settings) as tasks:
            for _ in range(200):
                if any(d["objective"] == "obj-loop-cls" for d in hook.documents):
                    break
                await asyncio.sleep(0.1)
            assert not any(task.done() for task in tasks)
        assert [d["objective"] for d in hook.documents].count("obj-loop-cls") == 1
        assert hook.attempts >= 5
        # The loop stores what it checked, for the scorecard's band.
        assert await conn.fetchval("SELECT status FROM rum.objective_results"
                                   " WHERE name = 'obj-loop-cls'") == "met"
    finally:
        await conn.execute("DELETE FROM binome.objectives WHERE site = 'obj-loop'")
        hook.close()


async def _one_objective(conn: asyncpg.Connection, site: str) -> None:
    """A site of 60 page views with a CLS of 0.01 and an objective cls_p75 <= 0.1
    (met), named SITE-cls; other objectives of the test database are already
    notified, so that only this one changes."""
    await conn.execute("INSERT INTO binome.sites (site) VALUES ($1) ON CONFLICT DO NOTHING", site)
    await insert_beacons(conn, [page_view(site, f"{site}-{i}", today(), lcp=1000, seconds=i)
                                for i in range(60)], random.Random(5))
    await conn.execute("UPDATE binome.objectives o SET notified_status = r.status"
                       " FROM rum.objectives r WHERE r.site = o.site AND r.name = o.name")
    await objectives.add(conn, site, "cls_p75", "0.1", f"{site}-cls", [])


def test_objective_add_refuses_bad_input(fresh_database: str) -> None:
    env = {"BINOME_DATABASE_URL": fresh_database}
    assert binome("site", "add", "shop", env=env).returncode == 0
    assert binome("objective", "add", "shop", "inp_p75", "200", env=env).returncode == 0
    for args, says in (
            (["shop", "lcp_p99", "2500"], "unknown metric 'lcp_p99'"),
            (["shop", "lcp_p75", "fast"], "target 'fast' is not a number"),
            (["shop", "lcp_p75", "-1"], "0 or more"),
            (["shop", "conversion_rate", "150"], "percentage"),
            (["nowhere", "lcp_p75", "2500"], "unknown site 'nowhere'"),
            (["shop", "lcp_p75", "2500", "--where", "browser=Chrome"], "unknown key 'browser'"),
            (["shop", "lcp_p75", "2500", "--where", "landing=false"], "landing takes only"),
            (["shop", "inp_p75", "100"], "'shop-inp_p75' exists already")):
        done = binome("objective", "add", *args, env=env)
        assert done.returncode == 2, (args, done.stdout)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and lines[0].startswith("binome: "), done.stderr
    removed = binome("objective", "remove", "nothing-here", env=env)
    assert removed.returncode == 2 and "no objective named 'nothing-here'" in removed.stderr
    listed = binome("objective", "list", env=env)
    assert listed.returncode == 0 and "shop-inp_p75" in listed.stdout
    # add checked it at once; list shows that check's figures and time.
    assert "shop-inp_p75: too few" in listed.stdout and " UTC" in listed.stdout
    assert binome("objective", "remove", "shop-inp_p75", env=env).returncode == 0
    assert "no objectives yet" in binome("objective", "list", env=env).stdout


async def test_binome_report_prints_the_objectives(database_url: str,
                                                   conn: asyncpg.Connection) -> None:
    from io import StringIO

    from rich.console import Console

    from collector.report import print_report

    try:
        await _one_objective(conn, "obj-report")
        output = StringIO()
        await print_report(database_url, site="obj-report", days=28,
                           console=Console(file=output, width=300))
        rendered = output.getvalue()
        line = next(x for x in rendered.splitlines() if "obj-report-cls" in x)
        assert "│ met " in line and "cls_p75 0.010 (0.010 to 0.010)" in line
        assert "≤ 0.100" in line and "│ 60 " in line
        # The 8 weeks, oldest first: this week's value last.
        assert line.rstrip(" │").endswith("– 0.010")
        assert rendered.index("Objectives") < rendered.index("Shared scorecard")
    finally:
        await conn.execute("DELETE FROM binome.objectives WHERE site = 'obj-report'")


async def test_the_check_runs_as_binome_writer(conn: asyncpg.Connection,
                                               receiver: Receiver) -> None:
    """`binome serve`'s maintenance checks as binome_writer (or binome_maintainer,
    its member): it reads rum.objectives and records what it delivered, and may
    change nothing else of an objective."""
    try:
        await _one_objective(conn, "obj-writer")
        await conn.execute("SET ROLE binome_writer")
        await conn.execute("RESET ROLE")
        # Stored figures the writer's check replaces (add, as the owner, checked it).
        await conn.execute("UPDATE binome.objectives SET checked_at = NULL, status = NULL"
                           " WHERE name = 'obj-writer-cls'")
        await conn.execute("SET ROLE binome_writer")
        report = await objectives.check(conn, receiver.url)
        assert ("obj-writer-cls", None, "met") in report.posted
        stored = await conn.fetchrow("SELECT status, n, checked_at FROM binome.objectives"
                                     " WHERE name = 'obj-writer-cls'")
        assert (stored["status"], stored["n"]) == ("met", 60) and stored["checked_at"]
        for statement in ("UPDATE binome.objectives SET target = 1",
                          "DELETE FROM binome.objectives",
                          "INSERT INTO binome.objectives (site, name, metric, target)"
                          " VALUES ('obj-writer', 'intruder', 'lcp_p75', 1)"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(statement)
    finally:
        await conn.execute("RESET ROLE")
        await conn.execute("DELETE FROM binome.objectives WHERE site = 'obj-writer'")
    assert [d["objective"] for d in receiver.documents] == ["obj-writer-cls"]


async def test_each_check_stores_its_figures_without_a_webhook(conn: asyncpg.Connection) -> None:
    """`objective add` stores a first check of the new objective; `check`
    without a webhook stores every objective's figures (as rum.objectives and
    rum.objective_weeks give them at that moment) and marks nothing delivered."""
    site = "obj-stored"
    try:
        await conn.execute("INSERT INTO binome.sites (site) VALUES ($1)", site)
        await insert_beacons(conn, [page_view(site, f"{site}-{i}", today(), lcp=2000 + i,
                                              seconds=i) for i in range(80)], random.Random(8))
        await objectives.add(conn, site, "lcp_p75", "2500", f"{site}-lcp", [])
        first = await conn.fetchrow("SELECT * FROM rum.objective_results WHERE name = $1",
                                    f"{site}-lcp")
        live = await objective(conn, f"{site}-lcp")
        assert first["checked_at"] is not None
        assert [first[k] for k in ("value", "value_low", "value_high", "n", "status")] == [
            live[k] for k in ("value", "value_low", "value_high", "n", "status")]
        weeks = json.loads(first["weeks"])
        live_weeks = await conn.fetch("SELECT week_start, value, n FROM rum.objective_weeks"
                                      " WHERE name = $1 ORDER BY week_start", f"{site}-lcp")
        assert [(w["week_start"], w["value"], w["n"]) for w in weeks] == [
            (r["week_start"].isoformat(), r["value"], r["n"]) for r in live_weeks]

        await insert_beacons(conn, [page_view(site, f"{site}-more-{i}", today(), lcp=4000,
                                              seconds=100 + i) for i in range(80)],
                             random.Random(9))
        report = await objectives.check(conn, None)
        assert report.posted == [] and report.undelivered == []
        second = await conn.fetchrow("SELECT * FROM binome.objectives WHERE name = $1",
                                     f"{site}-lcp")
        assert (second["n"], second["status"]) == (160, "missed")
        assert second["checked_at"] > first["checked_at"]
        assert second["notified_status"] is None
    finally:
        await conn.execute("DELETE FROM binome.sites WHERE site = $1", site)


async def test_a_check_older_than_the_stored_figures_leaves_them(
        conn: asyncpg.Connection) -> None:
    """Two checks at once: the one that started later wins, whichever stores
    first (stored figures dated after this check's start stay)."""
    site = "obj-older"
    try:
        await conn.execute("INSERT INTO binome.sites (site) VALUES ($1)", site)
        await insert_beacons(conn, [page_view(site, f"{site}-{i}", today(), lcp=1000,
                                              seconds=i) for i in range(60)], random.Random(6))
        await objectives.add(conn, site, "lcp_p75", "2500", f"{site}-lcp", [])
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        await conn.execute("UPDATE binome.objectives SET checked_at = $2, n = 12345"
                           " WHERE name = $1", f"{site}-lcp", later)
        await objectives.check(conn, None, name=f"{site}-lcp")
        kept = await conn.fetchrow("SELECT n, checked_at FROM binome.objectives WHERE name = $1",
                                   f"{site}-lcp")
        assert (kept["n"], kept["checked_at"]) == (12345, later)
    finally:
        await conn.execute("DELETE FROM binome.sites WHERE site = $1", site)
