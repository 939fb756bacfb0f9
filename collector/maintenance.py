"""`binome maintain`: tomorrow's partitions, rollups of closed days, retention,
and the deletion of past days' session keys (collector/session_keys.py).

`binome serve` also runs it every BINOME_MAINTENANCE_MINUTES. A session-level
advisory lock makes a second run (another worker, another collector) skip
instead of collide. Everything it does goes through SECURITY DEFINER functions
(sql/functions/), so it works under the binome_writer role, except retention:
only binome_maintainer (or the owner) may run binome.apply_retention, whose
cutoff is never later than today minus the retention policy's months (issue
20). Under a role that may not, the run skips retention and says so; `binome
serve` and `binome maintain` connect with BINOME_MAINTENANCE_DATABASE_URL when
it is set (docs/deploy.md, "Roles").

Rollups (docs/analyst-guide.md, "Where the figures come from"): a UTC day is
closed once BINOME_ROLLUP_LAG_DAYS whole days have followed it, so the
beacons of page views still open at midnight have arrived; it is then rolled up
once. Anything that changes a rolled-up day later (a beacon arriving days late,
a session going on) marks the day dirty, the views compute it live again, and
the next run rolls it up again.

Snapshots (sql/functions/50_live_snapshots.sql): a live day with at least
BINOME_LIVE_SNAPSHOT_PAGE_VIEWS page views is rolled up as well, every
BINOME_LIVE_SNAPSHOT_SECONDS, and the views read that snapshot while it is
fresh (twice the interval): exact figures, at most an interval old, instead of
recomputing a million page views on every query. `binome serve` refreshes them
in their own loop; `binome maintain` refreshes them at the end of its run.

Objectives (collector/objectives.py): `binome serve` also runs `binome
objective check` every BINOME_OBJECTIVE_CHECK_MINUTES, so that a change of
status reaches BINOME_ALERT_WEBHOOK_URL without a cron and the scorecard's
Objectives band has the figures each check stores; one process at a time (an
advisory lock), and a failing webhook or check only waits for the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from collector import db, objectives
from collector.folder import FOLD_SET, fold_queue
from collector.settings import Settings

log = logging.getLogger(__name__)

MAINTENANCE_LOCK = 0x62696E6F6D656D  # "binomem"
# Snapshots have their own: a long maintenance run must not make them late.
# (A day being closed while it is snapshotted is guarded in SQL: 0006.)
SNAPSHOT_LOCK = 0x62696E6F6D6573  # "binomes"
# The periodic objective check: one process computes rum.objectives a round
# (the row locks of objectives.check keep a change from being posted twice anyway).
OBJECTIVES_LOCK = 0x62696E6F6D656F  # "binomeo"


@dataclass
class MaintenanceReport:
    today: dt.date
    closed_through: dt.date
    retention_cutoff: dt.date
    partitions: list[dt.date] = field(default_factory=list)
    rolled_up: list[tuple[str, dt.date]] = field(default_factory=list)
    still_dirty: list[tuple[str, dt.date]] = field(default_factory=list)
    partitions_dropped: int = 0
    session_keys_deleted: int = 0
    rejections_deleted: int = 0
    retention_skipped: bool = False
    folded: int = 0
    snapshots: list[tuple[str, dt.date, int]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"{self.folded} queued page views folded" if self.folded else "",
                 f"partitions ready through {max(self.partitions)}" if self.partitions else "",
                 f"days closed through {self.closed_through}",
                 f"{len(self.rolled_up)} site-days rolled up",
                 f"{len(self.still_dirty)} changed meanwhile (next run)"
                 if self.still_dirty else "",
                 "retention skipped (this role may not run it)" if self.retention_skipped else
                 f"{self.partitions_dropped} raw partitions before {self.retention_cutoff} dropped",
                 f"{self.session_keys_deleted} past session keys deleted"
                 if self.session_keys_deleted else "",
                 f"{self.rejections_deleted} refused-beacon counts over 7 days deleted"
                 if self.rejections_deleted else "",
                 f"{len(self.snapshots)} busy live site-days snapshotted" if self.snapshots else "",
                 f"{self.seconds:.1f} s"]
        return "; ".join(p for p in parts if p)


async def maintain(conn: asyncpg.Connection, *, retention_months: int, rollup_lag_days: int,
                   today: dt.date | None = None, snapshot_page_views: int | None = None,
                   snapshot_seconds: float = 60.0) -> MaintenanceReport | None:
    """One maintenance run; None when another one holds the lock. With
    snapshot_page_views, it ends by snapshotting the live days that busy."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MAINTENANCE_LOCK):
        return None
    started = time.perf_counter()
    try:
        # No migrate meanwhile (collector/db.py): it would re-create the
        # functions the rollups run.
        async with db.schema_steady(conn):
            if today is None:
                today = await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
            assert today is not None
            # The cutoff binome.apply_retention will apply (sql/functions/10_partitions.sql).
            cutoff = await conn.fetchval(
                "SELECT binome.retention_cutoff(($1::date - make_interval(months => $2))::date)",
                today, retention_months)
            report = MaintenanceReport(
                today=today, closed_through=today - dt.timedelta(days=rollup_lag_days + 1),
                retention_cutoff=cutoff)
            for day in (today, today + dt.timedelta(days=1)):
                await conn.execute("SELECT binome.ensure_beacon_partition($1)", day)
                report.partitions.append(day)
            # What the collectors' folders left (one stopped before it was done):
            # rollups are made of folded page views. As many sets as were queued
            # when the run began, so that steady ingest cannot hold it here.
            queued = await conn.fetchval("SELECT count(*) FROM binome.fold_queue")
            if queued:
                report.folded = await fold_queue(conn, max_rounds=-(-queued // FOLD_SET) + 1)
            dirty = await conn.fetch("SELECT site, day FROM binome.close_days($1)",
                                     report.closed_through)
            for row in dirty:
                if row["day"] < cutoff:
                    continue  # retention drops it below
                if await conn.fetchval("SELECT binome.rollup_day($1, $2)", row["site"],
                                       row["day"]):
                    report.rolled_up.append((row["site"], row["day"]))
                else:
                    report.still_dirty.append((row["site"], row["day"]))
            if await conn.fetchval(
                    "SELECT has_function_privilege('binome.apply_retention(date)', 'EXECUTE')"):
                report.partitions_dropped = await conn.fetchval(
                    "SELECT binome.apply_retention($1)", cutoff)
            else:
                report.retention_skipped = True
                log.info("retention skipped: this role may not run it; set "
                         "BINOME_MAINTENANCE_DATABASE_URL to a binome_maintainer login",
                         extra={"role": await conn.fetchval("SELECT current_user")})
            # The keys of days over: no session id links to stored rows after this
            # (collector/session_keys.py).
            report.session_keys_deleted = await conn.fetchval("SELECT binome.forget_session_keys()")
            # Refused-beacon counts are kept 7 days (sql/functions/15_ingest_rejections.sql).
            report.rejections_deleted = await conn.fetchval(
                "SELECT binome.forget_ingest_rejections()")
            if snapshot_page_views is not None:
                report.snapshots = await refresh_snapshots(
                    conn, min_page_views=snapshot_page_views, interval_seconds=snapshot_seconds) or []
            report.seconds = time.perf_counter() - started
            return report
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MAINTENANCE_LOCK)


async def refresh_snapshots(conn: asyncpg.Connection, *, min_page_views: int,
                            interval_seconds: float) -> list[tuple[str, dt.date, int]] | None:
    """Snapshot the busy live days; None when another process is at it."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", SNAPSHOT_LOCK):
        return None
    try:
        async with db.schema_steady(conn):
            # One REPEATABLE READ transaction: every site and rollup table of the
            # snapshots shows the same moment. Fresh for two intervals, so that one
            # late round does not send queries back to computing the day live.
            async with conn.transaction(isolation="repeatable_read"):
                rows = await conn.fetch(
                    "SELECT site, day, page_views FROM binome.refresh_live_snapshots($1, $2)",
                    min_page_views, dt.timedelta(seconds=2 * interval_seconds))
            return [(r["site"], r["day"], r["page_views"]) for r in rows
                    if r["page_views"] is not None]
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", SNAPSHOT_LOCK)


async def maintain_once(database_url: str, settings: Settings,
                        today: dt.date | None = None) -> MaintenanceReport | None:
    """One run on its own connection, as BINOME_MAINTENANCE_DATABASE_URL's role
    when set, else as database_url's."""
    conn = await db.connect(settings.maintenance_database_url or database_url,
                            "binome-maintenance")
    try:
        return await maintain(
            conn, retention_months=settings.retention_months,
            rollup_lag_days=settings.rollup_lag_days, today=today,
            snapshot_page_views=settings.live_snapshot_page_views
            if settings.live_snapshot_seconds > 0 else None,
            snapshot_seconds=settings.live_snapshot_seconds)
    finally:
        await conn.close()


async def snapshot_periodically(database_url: str, settings: Settings) -> None:
    """`binome serve`'s snapshot loop, every BINOME_LIVE_SNAPSHOT_SECONDS, on
    one connection kept between rounds."""
    interval = settings.live_snapshot_seconds
    conn: asyncpg.Connection | None = None
    await asyncio.sleep(interval)
    while True:
        try:
            if conn is None or conn.is_closed():
                conn = await db.connect(database_url, "binome-maintenance")
            taken = await refresh_snapshots(conn, min_page_views=settings.live_snapshot_page_views,
                                            interval_seconds=interval)
            if taken:
                log.debug("live days snapshotted", extra={"site_days": len(taken)})
        except asyncio.CancelledError:
            if conn is not None:
                await conn.close()
            raise
        except Exception as exc:  # a late snapshot only means the views compute live
            log.warning("snapshot failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            if conn is not None:
                conn.terminate()
                conn = None
        await asyncio.sleep(interval)


async def _every(interval: float, job: Callable[[], Awaitable[None]], failure: str) -> None:
    """Run job soon after start, then every interval; a failure is logged and the
    next round tries again: never stop serving for it."""
    await asyncio.sleep(min(interval, 60.0))
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(failure, extra={"error": f"{type(exc).__name__}: {exc}"})
        await asyncio.sleep(interval)


async def run_periodically(database_url: str, settings: Settings) -> None:
    """`binome serve`'s maintenance loop."""
    async def job() -> None:
        report = await maintain_once(database_url, settings)
        if report is not None and (report.rolled_up or report.partitions_dropped):
            log.info("maintenance done", extra={"summary": report.summary()})
    await _every(settings.maintenance_minutes * 60, job, "maintenance failed")


async def check_objectives_once(database_url: str,
                                settings: Settings) -> objectives.CheckReport | None:
    """One `binome objective check` on its own connection, as `binome maintain`'s
    role; None when another process is at it."""
    conn = await db.connect(settings.maintenance_database_url or database_url,
                            "binome-maintenance")
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", OBJECTIVES_LOCK):
            return None
        try:
            webhook = settings.alert_webhook_url
            return await objectives.check(conn, webhook.get_secret_value() if webhook else None)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", OBJECTIVES_LOCK)
    finally:
        await conn.close()


async def check_objectives_periodically(database_url: str, settings: Settings) -> None:
    """`binome serve`'s objective check (issue 21: alerts need no cron)."""
    async def job() -> None:
        report = await check_objectives_once(database_url, settings)
        if report is not None and report.posted:
            log.info("objective alerts posted", extra={"changes": len(report.posted)})
        if report is not None and report.undelivered:
            log.warning("objective alerts not delivered; the next check posts them",
                        extra={"changes": len(report.undelivered)})
    await _every(settings.objective_check_minutes * 60, job, "objective check failed")


@contextlib.asynccontextmanager
async def periodic_maintenance(
    database_url: str, settings: Settings
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run the loops for the duration of the block (each off when its interval is 0)."""
    tasks: list[asyncio.Task[None]] = []
    if settings.maintenance_minutes > 0:
        tasks.append(asyncio.create_task(run_periodically(database_url, settings),
                                         name="binome-maintenance"))
    if settings.live_snapshot_seconds > 0:
        tasks.append(asyncio.create_task(snapshot_periodically(database_url, settings),
                                         name="binome-snapshots"))
    if settings.objective_check_minutes > 0:
        tasks.append(asyncio.create_task(check_objectives_periodically(database_url, settings),
                                         name="binome-objectives"))
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
