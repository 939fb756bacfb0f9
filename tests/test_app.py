"""The collector's other routes (docs/beacon-format.md, "Routes") over real HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from collector import PROJECT_ROOT, db
from collector.beacon import json_schema


def test_schema_route_serves_the_models_schema(live_server: str) -> None:
    response = httpx.get(live_server + "/beacon.schema.json")
    assert response.status_code == 200
    assert response.json() == json_schema()


def test_healthz_and_readyz(live_server: str) -> None:
    assert httpx.get(live_server + "/healthz").status_code == 200
    ready = httpx.get(live_server + "/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def _migrate(url: str) -> None:
    conn = await db.connect(url)
    try:
        await db.migrate(conn, PROJECT_ROOT / "sql")
    finally:
        await conn.close()


async def connection_failure(url: str) -> Exception:
    try:
        conn = await db.connect(url)
    except Exception as exc:  # whatever the driver raises while the server is down
        return exc
    await conn.close()
    raise AssertionError("the database is up")


def test_readyz_is_503_with_the_reason_while_the_database_is_down(
    tmp_path: Path, start_collector: Any
) -> None:
    """A private cluster (never the shared server) is stopped under a running collector."""
    from collector.embedded import EmbeddedPostgres

    cluster = EmbeddedPostgres(tmp_path / "pg")
    url = cluster.start()
    try:
        asyncio.run(_migrate(url))
        collector = start_collector(database_url=url)
        assert httpx.get(collector.url + "/readyz").status_code == 200
        cluster.stop()
        down = httpx.get(collector.url + "/readyz", timeout=10)
        assert down.status_code == 503
        assert down.json()["reason"].startswith("database unreachable")
        # A short reason, never the driver's text (it names hosts, ports, roles).
        failure = asyncio.run(connection_failure(url))
        assert str(failure) and str(failure) not in down.text
        assert type(failure).__name__ not in down.text
        assert f":{urlsplit(url).port}" not in down.text
        assert httpx.get(collector.url + "/healthz").status_code == 200
        cluster.start()
        assert httpx.get(collector.url + "/readyz", timeout=10).status_code == 200
    finally:
        cluster.remove()


def test_dashboard_token(start_collector: Any) -> None:
    """tests/test_access.py has the rule case by case."""
    token = "s3cret-" + "0" * 25
    collector = start_collector(dashboard_token=token)
    assert httpx.get(collector.url + "/dashboard").status_code == 401
    assert httpx.get(collector.url + "/dashboard?token=wrong").status_code == 401
    assert httpx.get(collector.url + f"/dashboard?token={token}").status_code == 303
    bearer = httpx.get(collector.url + "/dashboard", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200 and "dashboard/assets/dashboard.js" in bearer.text


def test_dashboard_without_token_is_for_loopback_only(live_server: str) -> None:
    assert httpx.get(live_server + "/dashboard").status_code == 200


def test_metrics_is_prometheus_text(live_server: str) -> None:
    response = httpx.get(live_server + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for name in ("binome_beacons_received_total", "binome_beacons_accepted_total",
                 "binome_queue_depth", "binome_batches_written_total",
                 "binome_rows_written_total", "binome_write_seconds_bucket",
                 "binome_beacons_spooled_total", "binome_beacons_dropped_total"):
        assert name in response.text, name


def test_no_demo_page_without_demo(live_server: str) -> None:
    """Issue 24: a collector serves nothing at `/` unless `binome serve --demo` asks
    for the demo shop (tests/test_demo.py serves it with --demo)."""
    assert httpx.get(live_server + "/").status_code == 404
    assert httpx.get(live_server + "/demo/product.html").status_code == 404
    assert httpx.get(live_server + "/healthz").status_code == 200
