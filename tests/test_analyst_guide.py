"""Every SQL block of docs/analyst-guide.md runs, as binome_analyst (or
binome_analyst_rows for the row-level views), on data."""

from __future__ import annotations

import datetime as dt
import random
import re

import asyncpg

from collector import PROJECT_ROOT, db
from collector.maintenance import maintain
from tests.synthetic import insert_beacons, synthetic_beacons

GUIDE = PROJECT_ROOT / "docs" / "analyst-guide.md"


def sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", GUIDE.read_text(), re.DOTALL)


def test_the_guide_asks_ten_questions() -> None:
    questions = re.findall(r"^### \d+\. .+\?$", GUIDE.read_text(), re.MULTILINE)
    assert len(questions) == 10
    # SET TIME ZONE, then one per question; question 10 has two more (issue 22:
    # what the snippet could not send, how much traffic each metric covers);
    # "What speed is worth", rum.objectives and rum.objective_results (issue 21);
    # three first queries (moved from the README), why beacons were refused,
    # rum.ingest_rejections (issue 24).
    assert len(sql_blocks()) == 20


async def test_every_query_of_the_guide_runs(fresh_database: str) -> None:
    conn = await db.connect(fresh_database)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        today = dt.datetime.now(dt.UTC).date()
        rng = random.Random(3)
        rows = synthetic_beacons(rng, "shop", today - dt.timedelta(days=6), days=7,
                                 sessions=400)
        await insert_beacons(conn, rows, rng)
        await maintain(conn, retention_months=25, rollup_lag_days=1, today=today)
        await conn.execute(
            "INSERT INTO binome.ingest_counts (site, minute, received, accepted, rejected,"
            " rows_written) VALUES ('shop', date_trunc('minute', now()), 10, 9, 1, 8)")
        await conn.execute(
            "INSERT INTO binome.ingest_rejections (site, minute, reason, origin, refused)"
            " VALUES ('shpo', date_trunc('minute', now()), 'unknown_site', 'https://shop.fr', 3)")
        answered = 0
        for sql in sql_blocks():
            # The row-level views are binome_analyst_rows' (sql/views/99_grants.sql).
            row_level = re.search(r"rum\.(page_views_enriched|sessions)\b", sql)
            await conn.execute("SET ROLE " + ("binome_analyst_rows" if row_level
                                               else "binome_analyst"))
            try:
                result = await conn.fetch(sql)
            except asyncpg.PostgresError as exc:
                raise AssertionError(f"{exc}\n{sql}") from exc
            answered += bool(result)
        assert answered >= 10  # the questions find data to answer with
    finally:
        await conn.close()
