"""/metrics (collector/telemetry.py) under `binome serve --workers 2`: every scrape,
whichever worker answers it, gives the totals of both workers."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import make_beacon
from tests.test_faults import _serve, metrics


def test_metrics_add_up_across_workers(fresh_database: str, tmp_path: Path) -> None:
    process, url = _serve(fresh_database, tmp_path / "spool", tmp_path / "serve.log",
                          "--workers", "2", "--demo", batch_max_ms=20, queue_max=1000)
    try:
        with httpx.Client(timeout=10) as client, ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda i: client.post(
                url + "/beacon", content=json.dumps(make_beacon()),
                headers={"Content-Type": "text/plain"}).status_code, range(60)))
            bad = client.post(url + "/beacon", content=b"{", headers={"Content-Type": "text/plain"})
        assert statuses == [204] * 60 and bad.status_code == 400
        deadline = time.monotonic() + 10
        while metrics(url).get(("binome_rows_written_total", ()), 0) < 60:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for _ in range(8):  # new connections: the kernel spreads them over the workers
            figures = metrics(url)
            assert figures[("binome_beacons_received_total", ())] == 61
            assert figures[("binome_beacons_accepted_total", ())] == 60
            assert figures[("binome_beacons_rejected_total", (("reason", "malformed_json"),))] == 1
            assert figures[("binome_rows_written_total", ())] == 60
            assert figures[("binome_queue_capacity", ())] == 2000  # two live workers
            assert figures[("binome_queue_depth", ())] == 0
            assert figures[("binome_spooling", ())] == 0
            assert figures[("binome_write_seconds_count", ())] >= 1
            assert figures[("binome_last_write_timestamp_seconds", ())] > time.time() - 60
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
