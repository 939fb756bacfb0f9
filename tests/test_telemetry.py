"""/metrics (collector/telemetry.py) under `binome serve --workers 2`: every scrape,
whichever worker answers it, gives the totals of both workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from collector.telemetry import IngestCounts
from tests.conftest import make_beacon
from tests.test_faults import _serve, metrics


def test_metrics_add_up_across_workers(fresh_database: str, tmp_path: Path) -> None:
    # The demo site without `serve --demo`, which would seed it for a minute first.
    added = subprocess.run([sys.executable, "-m", "collector.cli", "site", "add", "demo"],
                           env={**os.environ, "BINOME_DATABASE_URL": fresh_database},
                           capture_output=True, text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    process, url = _serve(fresh_database, tmp_path / "spool", tmp_path / "serve.log",
                          "--workers", "2", batch_max_ms=20, queue_max=1000)
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


def test_ingest_counts_add_up_by_site_and_minute_and_survive_a_failed_flush() -> None:
    counts = IngestCounts()
    counts.add("demo", received=1, accepted=1, at=120.5)
    counts.add("demo", received=1, rejected=1, at=179.9)
    counts.add("demo", rows_written=1, at=180.0)
    counts.add("other", received=1, at=130)
    taken = counts.take()
    assert sorted(taken) == [("demo", 2, [2, 1, 1, 0]), ("demo", 3, [0, 0, 0, 1]),
                             ("other", 2, [1, 0, 0, 0])]
    assert counts.take() == []
    counts.put_back(taken)  # the write failed: they go out with the next one
    counts.add("demo", received=1, at=121)
    assert sorted(counts.take()) == [("demo", 2, [3, 1, 1, 0]), ("demo", 3, [0, 0, 0, 1]),
                                     ("other", 2, [1, 0, 0, 0])]
