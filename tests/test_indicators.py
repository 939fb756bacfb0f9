"""collector/indicators.py and sql/views/01_indicators.sql state the same rules,
and the views plan a threshold as they would a literal."""

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg
import pytest

from collector import PROJECT_ROOT
from collector.indicators import CORE_WEB_VITALS, METRICS, THRESHOLDS, TOO_SMALL, rating


async def test_sql_thresholds_are_pythons(conn: asyncpg.Connection) -> None:
    for metric in METRICS:
        good, poor = THRESHOLDS[metric]
        assert await conn.fetchval("SELECT rum.good_threshold($1)", metric) == good, metric
        assert await conn.fetchval("SELECT rum.poor_threshold($1)", metric) == poor, metric
    # The same double as a literal compared with a float8 column (cls <= 0.1).
    assert await conn.fetchval("SELECT rum.good_threshold('cls') = 0.1::float8")
    assert await conn.fetchval("SELECT rum.good_threshold('tbt')") is None


async def test_sql_too_small_is_pythons(conn: asyncpg.Connection) -> None:
    assert await conn.fetchval("SELECT rum.too_small($1)", TOO_SMALL - 1) is True
    assert await conn.fetchval("SELECT rum.too_small($1)", TOO_SMALL) is False


@pytest.mark.parametrize("metric", METRICS)
async def test_sql_rating_is_pythons(conn: asyncpg.Connection, metric: str) -> None:
    """Values at and either side of each threshold rate the same in SQL and Python."""
    good, poor = THRESHOLDS[metric]
    step = 0.01 if metric == "cls" else 1
    for value in (good - step, good, good + step, poor - step, poor, poor + step):
        in_sql = await conn.fetchval(
            "SELECT CASE WHEN $2::float8 <= rum.good_threshold($1) THEN 'good'"
            " WHEN $2::float8 > rum.poor_threshold($1) THEN 'poor'"
            " ELSE 'needs-improvement' END", metric, value)
        assert in_sql == rating(metric, value), (metric, value)


async def test_sql_good_experience_is_pythons(conn: asyncpg.Connection) -> None:
    good = {m: THRESHOLDS[m][0] for m in CORE_WEB_VITALS}
    query = "SELECT rum.cwv_good($1, $2, $3)"
    assert await conn.fetchval(query, good["lcp"], good["inp"], good["cls"]) is True
    assert await conn.fetchval(query, good["lcp"], None, good["cls"]) is True
    assert await conn.fetchval(query, good["lcp"] + 1, good["inp"], good["cls"]) is False
    assert await conn.fetchval(query, good["lcp"], good["inp"] + 1, good["cls"]) is False
    assert await conn.fetchval(query, good["lcp"], good["inp"], good["cls"] + 0.01) is False


def _functions_called(plan: Any) -> set[str]:
    """Every function named in a plan's expressions (EXPLAIN VERBOSE)."""
    found: set[str] = set()
    if isinstance(plan, dict):
        for key, value in plan.items():
            if isinstance(value, str) and key in ("Filter", "Output", "Group Key", "Hash Cond"):
                found |= set(re.findall(r"rum\.\w+", value))
            found |= _functions_called(value)
    elif isinstance(plan, list):
        for item in plan:
            found |= _functions_called(item)
    return found


@pytest.mark.parametrize("view", ["binome.scorecard_live", "binome.release_live",
                                  "rum.scorecard_daily", "rum.perf_vs_conversion",
                                  "rum.release_comparison"])
async def test_the_functions_are_inlined(conn: asyncpg.Connection, view: str) -> None:
    """No per-row call: the planner folds them into the expressions they stand for."""
    [plan] = json.loads(await conn.fetchval(f"EXPLAIN (VERBOSE, FORMAT JSON) SELECT * FROM {view}"))
    assert _functions_called(plan) == set()


def test_no_view_types_a_threshold_out() -> None:
    """The views use rum.good_threshold / poor_threshold / too_small, not literals."""
    literals = {str(v) for pair in THRESHOLDS.values() for v in pair} | {str(TOO_SMALL)}
    for path in sorted((PROJECT_ROOT / "sql" / "views").glob("*.sql")):
        if path.name == "01_indicators.sql":
            continue
        code = "\n".join(line.split("--")[0] for line in path.read_text().splitlines())
        for op in ("<=", "<", ">"):
            for literal in literals:
                assert not re.search(rf"{op}\s*{re.escape(literal)}\b", code), (path.name, literal)
