"""Spool replay: the batches the writer spooled while PostgreSQL could not take
them are written back, oldest file first, each write retried with backoff.

Files left by other processes (a worker that died, the previous run) are found
by a scan every SCAN_INTERVAL_S; this process's own file is sealed and replayed
once it is all that is left, and then the writer is told the spool is drained.
A file being replayed when the collector stops stays in the spool and is
replayed again next time, which the idempotency key makes harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from collector import telemetry
from collector.row import COLUMNS, Record
from collector.spool import Spool, SpoolFile

log = logging.getLogger(__name__)

SCAN_INTERVAL_S = 2.0
# A replay joins spooled batches into writes of this many rows (or the writer's
# batch size if larger): the memory a replay holds.
REPLAY_BATCH_ROWS = 2000


class _ReplayStopped(Exception):
    """The writer is stopping: the file being replayed waits for the next start."""


class _ReplayRun:
    """One stretch of replaying, from the first file claimed to an empty spool."""

    def __init__(self) -> None:
        self.files = 0
        self.rows = 0
        self.first_write_at: float | None = None


class SpoolReplay:
    def __init__(self, spool: Spool, spool_lock: asyncio.Lock, *,
                 write: Callable[[list[Record]], Awaitable[object]], batch_rows: int,
                 retry_max_s: float, note_failure: Callable[[BaseException], None],
                 closing: Callable[[], bool], drained: Callable[[], None]) -> None:
        """`write` writes one batch or raises; `note_failure` is told each failure;
        `drained` is called, holding `spool_lock`, once the spool is empty."""
        self._spool = spool
        self._spool_lock = spool_lock
        self._write = write
        self._batch_rows = max(batch_rows, REPLAY_BATCH_ROWS)
        self._retry_max_s = retry_max_s
        self._note_failure = note_failure
        self._closing = closing
        self._drained = drained
        self._wanted = asyncio.Event()
        self._run: _ReplayRun | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="binome-replay")

    def wake(self) -> None:
        """A batch was spooled: look now rather than at the next scan."""
        self._wanted.set()

    async def stop(self, timeout: float) -> None:
        if self._task is None:
            return
        # The loop also checks `closing`, in case the cancellation lands where it
        # could be lost.
        self._task.cancel()
        done, _pending = await asyncio.wait({self._task}, timeout=timeout)
        if not done:
            log.error("spool replay did not stop; leaving it")

    async def _loop(self) -> None:
        while not self._closing():
            self._wanted.clear()
            try:
                progressed = await self._step()
            except asyncio.CancelledError:
                raise
            except _ReplayStopped:
                return
            except Exception:
                log.exception("spool replay failed unexpectedly")
                progressed = False
            if not progressed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SCAN_INTERVAL_S):
                        await self._wanted.wait()

    async def _step(self) -> bool:
        """Replay one spool file; False when there was nothing to replay."""
        # Synchronous on purpose (a directory listing and non-blocking flocks): a
        # cancellation must not leave a claimed file locked in a forgotten thread.
        spool_file = self._spool.claim()
        if spool_file is None:
            async with self._spool_lock:
                if self._spool.holds_unsealed:
                    # Our own file is all that is left: seal it so it can be replayed.
                    self._spool.seal()
                    return True
                self._drained()
            self.finish_run()
            telemetry.set_spool_usage(*self._spool.usage())
            return False
        if self._run is None:
            self._run = _ReplayRun()
            used, files = self._spool.usage()
            log.info("spool replay started", extra={"spool_bytes": used, "spool_files": files})
        try:
            await self._replay_file(spool_file)
        finally:
            spool_file.release()
        return True

    async def _replay_file(self, spool_file: SpoolFile) -> None:
        run = self._run
        assert run is not None
        replayed = 0
        for batch in _coalesce(spool_file.batches(), self._batch_rows):
            # A row spooled before a column was added (client_losses, issue 22)
            # is shorter: its new trailing columns are NULL.
            batch = [row + (None,) * (len(COLUMNS) - len(row)) for row in batch]
            await self._write_with_retry(batch)
            if run.first_write_at is None:
                run.first_write_at = time.monotonic()
            replayed += len(batch)
            run.rows += len(batch)
            telemetry.REPLAYED.inc(len(batch))
        run.files += 1
        if spool_file.damage:
            target = spool_file.quarantine()
            telemetry.QUARANTINED.inc()
            log.error("damaged spool file quarantined", extra={
                "file": spool_file.path.name, "moved_to": str(target),
                "damage": [vars(d) for d in spool_file.damage],
                "beacons_replayed": replayed,
            })
        else:
            spool_file.remove()
        telemetry.set_spool_usage(*self._spool.usage())

    async def _write_with_retry(self, batch: list[Record]) -> None:
        delay = 0.1
        while True:
            try:
                await self._write(batch)
                return
            except Exception as exc:
                self._note_failure(exc)
                if self._closing():
                    raise _ReplayStopped from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)

    def finish_run(self, *, stopping: bool = False) -> None:
        """Log the stretch of replaying that ends (the spool empty, or the writer stopping)."""
        run, self._run = self._run, None
        if run is None:
            return
        seconds = time.monotonic() - run.first_write_at if run.first_write_at else 0.0
        used, files = self._spool.usage()
        log.info("spool replay stopped, the rest waits for the next start" if stopping
                 else "spool replay done", extra={
            "files": run.files, "beacons": run.rows, "seconds": round(seconds, 3),
            "beacons_per_second": round(run.rows / seconds) if seconds > 0 else None,
            "spool_bytes_left": used, "spool_files_left": files,
        })


def _coalesce(batches: Iterator[list[Record]], rows: int) -> Iterator[list[Record]]:
    """Spooled batches joined into writes of about `rows` rows: an outage spools
    many small batches, and one transaction per batch would slow the replay."""
    pending: list[Record] = []
    for batch in batches:
        pending.extend(batch)
        if len(pending) >= rows:
            yield pending
            pending = []
    if pending:
        yield pending
