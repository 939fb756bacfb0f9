"""What the collector counts: Prometheus metrics for ops (GET /metrics), and the
per-minute, per-site counters analysts read in rum.ingest_health (INGEST_COUNTS,
which the writer adds to binome.ingest_counts with its writes).

With `binome serve --workers N`, PROMETHEUS_MULTIPROC_DIR is set before the
workers start, and prometheus_client aggregates every worker's samples; gauges
declare how: a sum over live workers (queue depth), the maximum (last write
time), or the most recent value of any worker for what they share (the spool
directory). A worker that stops marks itself dead (app.py), so its live gauges
leave the sums.
"""

from __future__ import annotations

import collections
import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

BEACONS_RECEIVED = Counter("binome_beacons_received", "POST /beacon requests received.")
BEACONS_ACCEPTED = Counter("binome_beacons_accepted", "Beacons accepted (answered 204).")
BEACONS_REJECTED = Counter(
    "binome_beacons_rejected",
    "Beacons not stored, by reason: the error code, or bot, headless, no_user_agent "
    "(automated traffic, answered 204).",
    ["reason"],
)
QUEUE_DEPTH = Gauge(
    "binome_queue_depth", "Beacons in memory awaiting a write.", multiprocess_mode="livesum"
)
QUEUE_CAPACITY = Gauge(
    "binome_queue_capacity", "Beacons the in-memory queues may hold (BINOME_QUEUE_MAX per worker).",
    multiprocess_mode="livesum",
)
BATCHES = Counter("binome_batches_written", "Batches written to PostgreSQL.")
ROWS_WRITTEN = Counter("binome_rows_written", "Beacon rows inserted (resends not counted).")
WRITE_SECONDS = Histogram(
    "binome_write_seconds",
    "Time to write one batch to PostgreSQL.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PAGE_VIEWS_FOLDED = Counter(
    "binome_page_views_folded",
    "Page views folded into binome.page_views (what the analyst views read) behind the writes.",
)
FOLD_SECONDS = Histogram(
    "binome_fold_seconds",
    "Time of one fold: a set of up to 5,000 queued page views (the whole queue at shutdown).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
FOLD_LAG = Gauge(
    "binome_fold_lag_seconds",
    "How long the oldest page view of the last fold had waited in the queue; 0 once the"
    " queue is empty. While it grows, the views lag behind the beacons stored.",
    multiprocess_mode="livemax",
)
WRITE_ERRORS = Counter("binome_write_errors", "Batch writes that failed and will be retried.")
DEAD_LETTERS = Counter("binome_dead_letters", "Rows PostgreSQL refused, kept in binome.dead_letters.")
SPOOLED = Counter("binome_beacons_spooled", "Beacons written to the disk spool.")
REPLAYED = Counter("binome_beacons_replayed", "Spooled beacons written back to PostgreSQL.")
DROPPED = Counter("binome_beacons_dropped", "Accepted beacons that could not be kept.")
SPOOL_BYTES = Gauge(
    "binome_spool_bytes", "Bytes waiting in the disk spool.", multiprocess_mode="mostrecent"
)
SPOOL_FILES = Gauge(
    "binome_spool_files", "Files waiting in the disk spool.", multiprocess_mode="mostrecent"
)
SPOOL_MAX_BYTES = Gauge(
    "binome_spool_max_bytes", "The spool's size cap (BINOME_SPOOL_MAX_BYTES).",
    multiprocess_mode="max",
)
QUARANTINED = Counter(
    "binome_spool_quarantined_files", "Damaged spool files moved to the quarantine directory."
)
SPOOLING = Gauge(
    "binome_spooling",
    "1 while batches go to the disk spool (PostgreSQL unreachable or the spool draining).",
    multiprocess_mode="livemax",
)
DURABLE_LOG_BYTES = Gauge(
    "binome_durable_log_bytes",
    "Bytes in this process's durable log (BINOME_DURABLE=true): beacons answered 204 whose"
    " batch is not yet written or spooled, plus a stored tail until it is truncated.",
    multiprocess_mode="livesum",
)
DURABLE_FSYNC_SECONDS = Histogram(
    "binome_durable_fsync_seconds",
    "Time of one fsync of the durable log (one group of beacons).",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
DURABLE_GROUP_BEACONS = Histogram(
    "binome_durable_group_beacons",
    "Beacons answered by one fsync of the durable log (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
LAST_WRITE = Gauge(
    "binome_last_write_timestamp_seconds",
    "Unix time of the last successful write.",
    multiprocess_mode="max",
)


def mark_process_dead() -> None:
    """Drop this worker's live gauges from the aggregate (it is stopping)."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.mark_process_dead(os.getpid())


def render() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def set_spool_usage(used_bytes: int, files: int) -> None:
    SPOOL_BYTES.set(used_bytes)
    SPOOL_FILES.set(files)


class IngestCounts:
    """Per-minute, per-site counters (rum.ingest_health), flushed by the writer."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], list[int]] = collections.defaultdict(
            lambda: [0, 0, 0, 0]
        )

    def add(self, site: str, *, received: int = 0, accepted: int = 0, rejected: int = 0,
            rows_written: int = 0, at: float | None = None) -> None:
        minute = int((time.time() if at is None else at) // 60)
        counts = self._counts[(site, minute)]
        counts[0] += received
        counts[1] += accepted
        counts[2] += rejected
        counts[3] += rows_written

    def take(self) -> list[tuple[str, int, list[int]]]:
        taken = [(site, minute, counts) for (site, minute), counts in self._counts.items()]
        self._counts.clear()
        return taken

    def put_back(self, taken: list[tuple[str, int, list[int]]]) -> None:
        for site, minute, (received, accepted, rejected, rows) in taken:
            self.add(site, received=received, accepted=accepted, rejected=rejected,
                     rows_written=rows, at=minute * 60)

    def clear(self) -> None:
        self._counts.clear()


# One per process, as the Prometheus metrics above: the route adds what it
# receives, the writer what it writes, and the writer flushes both.
INGEST_COUNTS = IngestCounts()
