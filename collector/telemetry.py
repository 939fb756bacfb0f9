"""Prometheus metrics for ops (GET /metrics).

With `binome serve --workers N`, PROMETHEUS_MULTIPROC_DIR is set before the
workers start, and prometheus_client aggregates every worker's samples; gauges
declare how: a sum over live workers (queue depth), the maximum (last write
time), or the most recent value of any worker for what they share (the spool
directory). A worker that stops marks itself dead (app.py), so its live gauges
leave the sums.
"""

from __future__ import annotations

import os

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
