"""Shared objectives (contract section 7, issue 21): `binome objective
add|list|remove|check`.

An objective is a target for one metric of a site over the last 28 days,
optionally narrowed by a scope; binome.objectives keeps them
(sql/migrations/0005_objectives.sql) and rum.objectives computes each one's
value, interval and status (sql/views/57_objectives.sql).

`check` computes every objective (rum.objectives and rum.objective_weeks, in
one snapshot) and stores the figures with it (value .. checked_at,
sql/migrations/0005_objectives.sql; read back through rum.objective_results,
what the scorecard's Objectives band shows), then posts one JSON document to
BINOME_ALERT_WEBHOOK_URL per objective whose status changed since the last
delivered one (the first check of an objective is a change from no status).
Each objective is stored in a transaction that holds its row's lock while it
posts, and its new status is marked delivered only once the POST succeeded:
two checks at once post a change once (the second waits on the lock, then
finds the status delivered, or newer figures than its own and leaves them),
and a change whose POST failed is posted at the next check.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from collector.alerts import post_json

# Metric -> True when the target is a ceiling (the p75s: lower is better).
METRICS: dict[str, bool] = {
    "lcp_p75": True, "inp_p75": True, "cls_p75": True,
    "cwv_good_pct": False, "conversion_rate": False,
}
PERCENTAGES = ("cwv_good_pct", "conversion_rate")
# --where keys, as rum.objectives reads them; landing takes only `true`.
SCOPE_KEYS = ("channel", "utm_campaign", "device_class", "country", "page_type", "landing")
STATUSES = ("met", "at risk", "missed", "too few")
# As binome.objectives' CHECK.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.=-]{0,127}")
WINDOW_DAYS = 28
CHECK_WORK_MEM = "64MB"  # as the dashboard's statements (collector/dashboard.py)


class ObjectiveError(ValueError):
    """Something `binome objective` cannot do, said in one line."""


def parse_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ObjectiveError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    return metric


def parse_target(metric: str, text: str) -> float:
    try:
        target = float(text)
    except ValueError:
        raise ObjectiveError(f"target {text!r} is not a number") from None
    if not math.isfinite(target) or target < 0:
        raise ObjectiveError(f"target {text!r}: a finite number, 0 or more")
    if metric in PERCENTAGES and target > 100:
        raise ObjectiveError(f"target {text!r}: {metric} is a percentage, 0 to 100")
    return target


def parse_scope(items: Sequence[str]) -> dict[str, Any]:
    scope: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise ObjectiveError(f"--where {item!r}: use KEY=VALUE")
        if key not in SCOPE_KEYS:
            raise ObjectiveError(f"--where {item!r}: unknown key {key!r}: use one of "
                                 f"{', '.join(SCOPE_KEYS)}")
        if key in scope:
            raise ObjectiveError(f"--where {key} is given twice")
        if key == "landing":
            if value.lower() != "true":
                raise ObjectiveError(f"--where {item!r}: landing takes only `true`")
            scope[key] = True
        else:
            # Countries are stored as ISO 3166 alpha-2 codes, upper case (enrich.py).
            scope[key] = value.upper() if key == "country" else value
    return scope


def default_name(site: str, metric: str, scope: dict[str, Any]) -> str:
    """site-metric[-key=value...], e.g. shop-lcp_p75-channel=email-landing."""
    parts = [site, metric]
    for key in SCOPE_KEYS:
        if key == "landing" and scope.get(key):
            parts.append("landing")
        elif key in scope:
            parts.append(f"{key}={scope[key]}")
    name = re.sub(r"[^a-z0-9_.=-]+", "_", "-".join(parts).lower())
    return name[:128]


@dataclass(frozen=True)
class Objective:
    site: str
    name: str
    metric: str
    target: float
    scope: dict[str, Any]


async def add(conn: asyncpg.Connection, site: str, metric: str, target: str,
              name: str | None, where: Sequence[str]) -> Objective:
    metric = parse_metric(metric)
    objective = Objective(site, "", metric, parse_target(metric, target), parse_scope(where))
    chosen = name if name is not None else default_name(site, metric, objective.scope)
    if not NAME_PATTERN.fullmatch(chosen):
        raise ObjectiveError(f"invalid name {chosen!r}: use [a-z0-9][a-z0-9_.=-]{{0,127}}")
    objective = Objective(site, chosen, metric, objective.target, objective.scope)
    async with conn.transaction():
        # Names are unique across sites (`objective remove NAME`): the lock makes
        # the look-up and the insert one step for concurrent adds.
        await conn.execute("LOCK TABLE binome.objectives IN SHARE ROW EXCLUSIVE MODE")
        if not await conn.fetchval("SELECT true FROM binome.sites WHERE site = $1", site):
            raise ObjectiveError(f"unknown site {site!r}: register it with `binome site add`")
        taken = await conn.fetchval("SELECT site FROM binome.objectives WHERE name = $1", chosen)
        if taken is not None:
            raise ObjectiveError(f"an objective named {chosen!r} exists already (site {taken}):"
                                 " choose another with --name")
        await conn.execute(
            "INSERT INTO binome.objectives (site, name, metric, target, scope)"
            " VALUES ($1, $2, $3, $4, $5::jsonb)",
            site, chosen, metric, objective.target, _json(objective.scope))
    # A first check of this objective alone, so that the scorecard's band
    # shows its figures at once rather than after the next periodic check.
    # No alert: the next `check` posts its first status.
    await check(conn, None, name=chosen)
    return objective


def _json(scope: dict[str, Any]) -> str:
    return orjson.dumps(scope, option=orjson.OPT_SORT_KEYS).decode()


async def remove(conn: asyncpg.Connection, name: str) -> None:
    if await conn.fetchval("DELETE FROM binome.objectives WHERE name = $1 RETURNING site",
                           name) is None:
        raise ObjectiveError(f"no objective named {name!r}")


_STORED = """
SELECT site, name, metric, target, scope, value, value_low, value_high, n, status, checked_at,
       weeks::text AS weeks
FROM rum.objective_results
WHERE ($1::text IS NULL OR site = $1)
ORDER BY site, name
"""


async def fetch_stored(conn: asyncpg.Connection,
                       site: str | None = None) -> list[asyncpg.Record]:
    """rum.objective_results: every objective's figures as its last check stored them."""
    return await conn.fetch(_STORED, site)


def format_value(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if metric == "cls_p75":
        return f"{value:.3f}"
    if metric in PERCENTAGES:
        return f"{value:.1f} %"
    return f"{value:,.0f} ms"


def format_target(metric: str, target: float) -> str:
    return f"{'≤' if METRICS[metric] else '≥'} {format_value(metric, target)}"


def format_scope(scope: dict[str, Any]) -> str:
    return ", ".join("landing pages" if key == "landing" else f"{key}={scope[key]}"
                     for key in SCOPE_KEYS if key in scope) or "all page views"


def describe(row: asyncpg.Record) -> str:
    """One line: name: status, value (interval), n, target, site and scope (and
    when it was checked, for a stored row: rum.objective_results)."""
    metric = row["metric"]
    scope = row["scope"]
    scope = orjson.loads(scope) if isinstance(scope, str) else scope
    where = f"site {row['site']}, {format_scope(scope)}"
    if "checked_at" in row.keys() and row["checked_at"] is None:
        return (f"{row['name']}: not checked yet: {metric}, target "
                f"{format_target(metric, row['target'])}; {where}")
    interval = (f" ({format_value(metric, row['value_low'])} to "
                f"{format_value(metric, row['value_high'])})"
                if row["value_low"] is not None else "")
    checked = (f"; checked {row['checked_at'].astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
               if "checked_at" in row.keys() else "")
    return (f"{row['name']}: {row['status']}: {metric} {format_value(metric, row['value'])}"
            f"{interval}, n {row['n']:,}; target {format_target(metric, row['target'])}; "
            f"{where}{checked}")


def alert_text(row: asyncpg.Record | dict[str, Any], previous: str | None) -> str:
    """One line a Slack or Teams channel shows as the message."""
    was = f" (was {previous})" if previous else ""
    return (f"Binome objective {row['name']} on {row['site']}: {row['status']}{was}: "
            f"{row['metric']} {format_value(row['metric'], row['value'])} over "
            f"{WINDOW_DAYS} days, target {format_target(row['metric'], row['target'])}")


def alert_document(row: asyncpg.Record, previous: str | None) -> dict[str, Any]:
    return {"site": row["site"], "objective": row["name"], "metric": row["metric"],
            "target": row["target"], "value": row["value"], "status": row["status"],
            "previous_status": previous, "text": alert_text(row, previous)}


@dataclass
class CheckReport:
    objectives: list[asyncpg.Record] = field(default_factory=list)
    # (name, previous status, status) of each change delivered, or undelivered
    posted: list[tuple[str, str | None, str]] = field(default_factory=list)
    undelivered: list[tuple[str, str | None, str]] = field(default_factory=list)
    checked_at: dt.datetime | None = None

    @property
    def missed(self) -> list[str]:
        return [r["name"] for r in self.objectives if r["status"] == "missed"]


# Every objective (or the one named) computed now, with its 8 weeks oldest
# first as rum.objective_results keeps them, in one statement (one now()).
_CHECK = """
WITH weeks AS (
    SELECT site, name,
           jsonb_agg(jsonb_build_object('week_start', week_start, 'value', value, 'n', n)
                     ORDER BY week_start) AS weeks
    FROM rum.objective_weeks WHERE ($1::text IS NULL OR name = $1) GROUP BY site, name
)
SELECT o.site, o.name, o.metric, o.target, o.scope, o.value, o.value_low, o.value_high,
       o.n, o.status, o.created_at, w.weeks::text AS weeks, now() AS checked_at
FROM rum.objectives o LEFT JOIN weeks w USING (site, name)
WHERE ($1::text IS NULL OR o.name = $1)
ORDER BY o.site, o.name
"""


async def _compute(conn: asyncpg.Connection, name: str | None) -> list[asyncpg.Record]:
    # rum.objectives sorts the page views by session: in memory rather than
    # on disk (docs/performance.md, "Issue 21: objectives"). A custom plan, so
    # that a check of one objective reads that objective's site only.
    async with conn.transaction(readonly=True):
        await conn.execute(f"SET LOCAL work_mem = '{CHECK_WORK_MEM}'")
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        return await conn.fetch(_CHECK, name)


async def check(conn: asyncpg.Connection, webhook_url: str | None, *, name: str | None = None,
                attempts: int | None = None, first_delay: float | None = None) -> CheckReport:
    """Compute every objective (or the one named), store its figures, and post
    each change of status to webhook_url. Without a webhook the figures are
    stored and no status is marked delivered: a change waits for a check that
    can deliver it."""
    rows = await _compute(conn, name)
    report = CheckReport(objectives=rows, checked_at=rows[0]["checked_at"] if rows else None)
    retry: dict[str, Any] = {k: v for k, v in (("attempts", attempts),
                                               ("first_delay", first_delay)) if v is not None}
    for row in rows:
        async with conn.transaction():
            locked = await conn.fetchrow(
                "SELECT notified_status, checked_at, created_at FROM binome.objectives"
                " WHERE site = $1 AND name = $2 FOR UPDATE", row["site"], row["name"])
            # Removed (or removed and added again) meanwhile; or a check that
            # started later stored its figures already, and delivers their change.
            if (locked is None or locked["created_at"] != row["created_at"]
                    or (locked["checked_at"] is not None
                        and locked["checked_at"] > row["checked_at"])):
                continue
            await conn.execute(
                "UPDATE binome.objectives SET value = $3, value_low = $4, value_high = $5,"
                " n = $6, status = $7, weeks = $8::jsonb, checked_at = $9"
                " WHERE site = $1 AND name = $2", row["site"], row["name"], row["value"],
                row["value_low"], row["value_high"], row["n"], row["status"], row["weeks"],
                row["checked_at"])
            previous = locked["notified_status"]
            if not webhook_url or row["status"] is None or previous == row["status"]:
                continue
            change = (row["name"], previous, row["status"])
            if not await post_json(webhook_url, alert_document(row, previous), **retry):
                report.undelivered.append(change)
                continue
            await conn.execute(
                "UPDATE binome.objectives SET notified_status = $3, notified_at = now()"
                " WHERE site = $1 AND name = $2", row["site"], row["name"], row["status"])
            report.posted.append(change)
    return report


# The scorecard page's Objectives band (collector/dashboard.py): a site's
# objectives as their last check stored them (rum.objective_results), read by
# the key, whatever the traffic.
DASHBOARD_QUERY = """
SELECT name, metric, target, scope::text AS scope, value, value_low, value_high, n, status,
       weeks::text AS weeks, checked_at
FROM rum.objective_results
WHERE site = $1
ORDER BY name
"""


def dashboard_row(row: asyncpg.Record) -> dict[str, Any]:
    return {"name": row["name"], "metric": row["metric"], "target": row["target"],
            "at_most": METRICS[row["metric"]], "scope": orjson.loads(row["scope"]),
            "value": row["value"], "value_low": row["value_low"],
            "value_high": row["value_high"], "n": row["n"], "status": row["status"],
            "weeks": orjson.loads(row["weeks"]) if row["weeks"] else [],
            "checked_at": row["checked_at"].isoformat() if row["checked_at"] else None}
