"""Shared objectives (contract section 7, issue 21): `binome objective
add|list|remove|check`.

An objective is a target for one metric of a site over the last 28 days,
optionally narrowed by a scope; binome.objectives keeps them
(sql/migrations/0005_objectives.sql) and rum.objectives computes each one's
value, interval and status (sql/views/57_objectives.sql).

`check` posts one JSON document to BINOME_ALERT_WEBHOOK_URL per objective
whose status changed since the last delivered one (the first check of an
objective is a change from no status). Each objective is checked in a
transaction that holds its row's lock while it posts, and its new status is
written only once the POST succeeded: two checks at once post a change once
(the second waits on the lock, then finds the status delivered), and a change
whose POST failed is posted at the next check.
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
    return objective


def _json(scope: dict[str, Any]) -> str:
    return orjson.dumps(scope, option=orjson.OPT_SORT_KEYS).decode()


async def remove(conn: asyncpg.Connection, name: str) -> None:
    if await conn.fetchval("DELETE FROM binome.objectives WHERE name = $1 RETURNING site",
                           name) is None:
        raise ObjectiveError(f"no objective named {name!r}")


_OBJECTIVES = """
SELECT site, name, metric, target, scope, value, value_low, value_high, n, status
FROM rum.objectives
WHERE ($1::text IS NULL OR site = $1)
ORDER BY site, name
"""


async def fetch(conn: asyncpg.Connection, site: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(_OBJECTIVES, site)


_WEEKS = """
SELECT site, name, week_start, value, n
FROM rum.objective_weeks
WHERE ($1::text IS NULL OR site = $1)
ORDER BY site, name, week_start
"""


async def fetch_weeks(conn: asyncpg.Connection,
                      site: str | None = None) -> dict[tuple[str, str], list[asyncpg.Record]]:
    weeks: dict[tuple[str, str], list[asyncpg.Record]] = {}
    for row in await conn.fetch(_WEEKS, site):
        weeks.setdefault((row["site"], row["name"]), []).append(row)
    return weeks


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
    """One line: name: status, value (interval), n, target, site and scope."""
    metric = row["metric"]
    interval = (f" ({format_value(metric, row['value_low'])} to "
                f"{format_value(metric, row['value_high'])})"
                if row["value_low"] is not None else "")
    scope = row["scope"]
    scope = orjson.loads(scope) if isinstance(scope, str) else scope
    return (f"{row['name']}: {row['status']}: {metric} {format_value(metric, row['value'])}"
            f"{interval}, n {row['n']:,}; target {format_target(metric, row['target'])}; "
            f"site {row['site']}, {format_scope(scope)}")


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


async def check(conn: asyncpg.Connection, webhook_url: str | None, *,
                attempts: int | None = None, first_delay: float | None = None) -> CheckReport:
    """Recompute every objective; post each change of status to webhook_url.
    Without a webhook nothing is recorded: a change waits for a check that
    can deliver it."""
    async with conn.transaction():
        # rum.objectives sorts the 28 days' page views by session: in memory
        # rather than on disk (docs/performance.md, "Issue 21: objectives").
        await conn.execute(f"SET LOCAL work_mem = '{CHECK_WORK_MEM}'")
        rows = await fetch(conn)
    report = CheckReport(objectives=rows, checked_at=dt.datetime.now(dt.UTC))
    if not webhook_url:
        return report
    retry: dict[str, Any] = {k: v for k, v in (("attempts", attempts),
                                               ("first_delay", first_delay)) if v is not None}
    for row in report.objectives:
        if row["status"] is None:
            continue
        async with conn.transaction():
            locked = await conn.fetchrow(
                "SELECT notified_status FROM binome.objectives WHERE site = $1 AND name = $2"
                " FOR UPDATE", row["site"], row["name"])
            if locked is None:  # removed meanwhile
                continue
            previous = locked["notified_status"]
            if previous == row["status"]:
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
# objectives with their 8 weeks, oldest first, in one statement.
DASHBOARD_QUERY = """
WITH weeks AS (
    SELECT name, json_agg(json_build_object('week_start', week_start, 'value', value, 'n', n)
                          ORDER BY week_start)::text AS weeks
    FROM rum.objective_weeks WHERE site = $1 GROUP BY name
)
SELECT o.name, o.metric, o.target, o.scope::text AS scope, o.value, o.value_low,
       o.value_high, o.n, o.status, w.weeks
FROM rum.objectives o LEFT JOIN weeks w USING (name)
WHERE o.site = $1
ORDER BY o.name
"""


def dashboard_row(row: asyncpg.Record) -> dict[str, Any]:
    return {"name": row["name"], "metric": row["metric"], "target": row["target"],
            "at_most": METRICS[row["metric"]], "scope": orjson.loads(row["scope"]),
            "value": row["value"], "value_low": row["value_low"],
            "value_high": row["value_high"], "n": row["n"], "status": row["status"],
            "weeks": orjson.loads(row["weeks"]) if row["weeks"] else []}
