"""Prometheus config, Grafana provisioning and dashboards (prometheus/, grafana/),
checked against what they point at: every PromQL metric name exists in a live
collector's /metrics, every SQL query runs on the migrated database (so its
views and columns exist), every data source and mount is where compose puts it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from collector import PROJECT_ROOT, db
from tests.conftest import make_beacon, wait_for

DASHBOARDS = sorted((PROJECT_ROOT / "grafana" / "dashboards").glob("*.json"))
# The analyst views (docs/beacon-format.md, "Views"): what the analyst role may read.
# What Grafana (binome_analyst) may read: the grouped views, never the row-level
# ones (sql/views/99_grants.sql), and the p75 aggregate.
ANALYST_VIEWS = {"scorecard_daily", "campaign_histograms", "perf_vs_conversion",
                 "release_comparison", "ingest_health", "p75_from_histogram"}
# Series Prometheus makes itself for every target.
PROMETHEUS_SERIES = {"up"}
PROMQL_FUNCTIONS = {
    "abs", "absent", "avg", "avg_over_time", "bottomk", "ceil", "changes", "clamp_max",
    "clamp_min", "count", "count_over_time", "delta", "deriv", "floor", "group",
    "histogram_quantile", "idelta", "increase", "irate", "label_replace", "last_over_time",
    "max", "max_over_time", "min", "min_over_time", "quantile", "rate", "resets", "round",
    "scalar", "sort", "sort_desc", "stddev", "sum", "sum_over_time", "time", "timestamp",
    "topk", "vector",
}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                   "offset", "and", "or", "unless", "inf", "nan"}


def load_yaml(*parts: str) -> Any:
    return yaml.safe_load(PROJECT_ROOT.joinpath(*parts).read_text())


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panels(panel)  # rows nest their panels


def targets(kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(dashboard/panel title, target) for every query of the given data source type."""
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                datasource = target.get("datasource") or panel.get("datasource") or {}
                if datasource.get("type") == kind:
                    yield f"{path.name}: {panel['title']}", target
        for variable in dashboard.get("templating", {}).get("list", []):
            if (variable.get("datasource") or {}).get("type") == kind:
                yield f"{path.name}: ${variable['name']}", {"rawSql": variable["query"]}


def promql_metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors ([$__rate_interval])
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr):
        word, call = match.group(1), match.group(2)
        if call:
            assert word in PROMQL_FUNCTIONS, f"unknown PromQL function {word!r} in {expr!r}"
        elif word.lower() not in PROMQL_KEYWORDS:
            names.add(word)
    return names


def test_promql_names_are_extracted() -> None:
    assert promql_metric_names(
        "histogram_quantile(0.99, sum by (le) "
        "(rate(binome_write_seconds_bucket[$__rate_interval])))"
    ) == {"binome_write_seconds_bucket"}
    assert promql_metric_names('time() - max(binome_last_write_timestamp_seconds)') == {
        "binome_last_write_timestamp_seconds"}
    assert promql_metric_names('sum(up{job="binome"}) / 2') == {"up"}


@pytest.fixture(scope="module")
def exposed_names(live_server: str) -> set[str]:
    """Every sample name the collector's /metrics can show, by metric type."""
    text = httpx.get(live_server + "/metrics").text
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count",
                                                                  "_created"),
                "gauge": ("",), "summary": ("_sum", "_count", "")}
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def test_every_promql_metric_exists_in_the_collectors_metrics(exposed_names: set[str]) -> None:
    exprs = [(where, t["expr"]) for where, t in targets("prometheus")]
    assert len(exprs) >= 15
    used = set()
    for where, expr in exprs:
        names = promql_metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        missing = names - exposed_names - PROMETHEUS_SERIES
        assert not missing, f"{where}: {sorted(missing)} not in /metrics"
        used |= names
    # Every figure the issue asks ops to see is on the dashboard.
    for name in ("binome_beacons_received_total", "binome_beacons_accepted_total",
                 "binome_beacons_rejected_total", "binome_queue_depth", "binome_spool_bytes",
                 "binome_spool_files", "binome_batches_written_total", "binome_rows_written_total",
                 "binome_write_seconds_bucket", "binome_beacons_replayed_total",
                 "binome_beacons_dropped_total", "binome_last_write_timestamp_seconds",
                 # the durable log (issue 23): its size, fsync latency and group sizes
                 "binome_durable_log_bytes", "binome_durable_fsync_seconds_bucket",
                 "binome_durable_group_beacons_bucket"):
        assert name in used, name


def grafana_sql(sql: str) -> str:
    """Grafana's macros and variables replaced by what Grafana sends for them."""
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 r"\1 BETWEEN now() - interval '28 days' AND now()", sql)
    sql = sql.replace("$__timeFrom()", "now() - interval '28 days'").replace("$__timeTo()", "now()")
    sql = sql.replace("$site", "demo")
    assert "$" not in sql, f"a Grafana macro this test does not know: {sql}"
    return sql


async def test_every_sql_query_runs_on_the_migrated_views(database_url: str) -> None:
    queries = list(targets("grafana-postgresql-datasource"))
    assert len(queries) >= 8
    conn = await asyncpg.connect(database_url)
    try:
        # Once the migrations create the analyst role and grant it the views, the
        # queries run as that role: what Grafana's data source can do.
        analyst = await conn.fetchval(
            "SELECT has_schema_privilege('binome_analyst', 'rum', 'USAGE')"
            " FROM pg_roles WHERE rolname = 'binome_analyst'")
        for where, target in queries:
            sql = target["rawSql"]
            relations = set(re.findall(r"\b([A-Za-z_]\w*)\.([A-Za-z_]\w*)\b",
                                       re.sub(r"'[^']*'", "", sql)))
            schemas = {schema for schema, _name in relations}
            assert schemas == {"rum"}, f"{where}: analysts read schema rum only: {relations}"
            assert {name for _s, name in relations} <= ANALYST_VIEWS, where
            async with conn.transaction():
                if analyst:
                    await conn.execute("SET LOCAL ROLE binome_analyst")
                try:
                    await conn.fetch(grafana_sql(sql))  # runs: views and columns exist
                except asyncpg.PostgresError as exc:
                    pytest.fail(f"{where}: {exc}\n{sql}")
    finally:
        await conn.close()


def test_prometheus_scrapes_the_compose_collector() -> None:
    config = load_yaml("prometheus", "prometheus.yml")
    compose = load_yaml("docker-compose.yml")
    (job,) = config["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (target,) = [t for group in job["static_configs"] for t in group["targets"]]
    host, port = target.split(":")
    # On the compose network, not through the proxy (which answers /metrics 404).
    assert host in compose["services"] and port in compose["services"][host]["expose"]
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def test_grafana_provisioning_matches_compose_and_the_dashboards() -> None:
    compose = load_yaml("docker-compose.yml")
    grafana = compose["services"]["grafana"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in grafana["volumes"]}
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    sources = load_yaml("grafana", "provisioning", "datasources", "binome.yml")["datasources"]
    by_uid = {s["uid"]: s for s in sources}
    prometheus = next(s for s in sources if s["type"] == "prometheus")
    assert prometheus["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    postgres = next(s for s in sources if s["type"] == "grafana-postgresql-datasource")
    assert postgres["user"] == "binome_analyst"  # never the owner: analysts read views only
    assert postgres["url"] == "postgres:5432"
    assert postgres["jsonData"]["database"] == compose["services"]["postgres"]["environment"][
        "POSTGRES_DB"]
    variable = postgres["secureJsonData"]["password"].lstrip("$").strip("{}")
    assert variable in grafana["environment"]

    provider = load_yaml("grafana", "provisioning", "dashboards", "binome.yml")["providers"][0]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert len(DASHBOARDS) == 2
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        for panel in panels(dashboard):
            for target in [panel, *panel.get("targets", [])]:
                if "datasource" in target:
                    assert target["datasource"]["uid"] in by_uid, f"{path.name}: {panel['title']}"
                    assert target["datasource"]["type"] == by_uid[
                        target["datasource"]["uid"]]["type"]
    assert len(uids) == 2


def test_deploy_guide_tells_how_to_give_the_analyst_role_a_password() -> None:
    guide = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
    assert "ALTER ROLE binome_analyst" in guide and "ANALYST_PASSWORD" in guide
    assert Path(PROJECT_ROOT / "grafana" / "dashboards").is_dir()


async def test_ingest_health_counts_reach_the_view_within_two_seconds(
        fresh_database: str, start_collector: Any) -> None:
    """The per-minute counts are flushed on a timer too, not only with a write:
    a burst's last beacons, and rejected beacons alone (nothing to write), show up
    in rum.ingest_health without another beacon."""
    conn = await asyncpg.connect(fresh_database)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
        await db.add_site(conn, "demo", [])
        collector = start_collector(fresh_database, batch_max_ms=20, rate_limit_per_minute=0,
                                    store_automated=True, sites_refresh_seconds=1)
        query = ("SELECT concat_ws(',', sum(received), sum(accepted), sum(rejected),"
                 " sum(rows_written)) FROM rum.ingest_health WHERE site = $1")
        with httpx.Client(base_url=collector.url,
                          headers={"content-type": "text/plain"}) as client:
            for site, status, expected in (("demo", 204, "20,20,0,20"),
                                           ("nowhere", 403, "3,0,3,0")):
                for _ in range(int(expected.split(",")[0])):
                    answer = client.post("/beacon", content=json.dumps(make_beacon(site=site)))
                    assert answer.status_code == status
                sent = time.monotonic()
                counted = await wait_for(conn, query, "demo" if site == "demo" else "(unknown)",
                                         expect=expected, timeout=5)
                assert counted == expected
                assert time.monotonic() - sent < 2.0
    finally:
        await conn.close()
