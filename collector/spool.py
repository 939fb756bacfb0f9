"""The spool: batches the writer could not write, kept on local disk until
PostgreSQL answers again (collector/replay.py writes them back).

Layout of the spool directory (BINOME_SPOOL_DIR):

    <time_ns>-<pid>-<n>.spool   batches; file names sort in creation order
    <time_ns>-<pid>-<n>.tmp     a file being created, never replayed
    quarantine/                 damaged files, moved aside for inspection

A file is append-only: a sequence of frames, one per batch, each fsynced before
the batch leaves memory:

    b"BNS1" | length: u32 LE | crc32(length + payload): u32 LE | payload

so a torn write (a crash mid-append) or a damaged sector is detected, and the
frames after a damaged one are found again by their magic. The payload is the
batch as JSON whose values JSON cannot hold are tagged (see encode_batch), so a
record comes back as exactly the tuple the writer COPYs.

Several processes (`binome serve --workers N`) share the directory. Each appends
to files of its own, named by its pid, and holds an exclusive flock on the file
it appends to until it seals it. Any process replays any file it can lock, so
two workers never replay the same file, and the files of a worker that died are
replayed by the others (the kernel drops a dead process's locks). flock needs a
local file system, not NFS.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import math
import os
import struct
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from collector.row import Record

MAGIC = b"BNS1"
_HEADER = struct.Struct("<4sII")  # magic, payload length, crc32
# A length above this is damage, not a batch (a batch is at most batch_max_rows
# beacons of at most 64 KiB each).
MAX_FRAME_BYTES = 256 * 1024 * 1024
SUFFIX = ".spool"
QUARANTINE = "quarantine"


class SpoolFull(Exception):
    """The spool holds BINOME_SPOOL_MAX_BYTES already."""


# -- records <-> bytes ------------------------------------------------------------


def _tag(value: Any) -> Any:
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if kind is int:
        return value if -(2**63) <= value < 2**64 else {"i": str(value)}
    if kind is float:
        return value if math.isfinite(value) else {"f": repr(value)}
    if kind is dt.datetime:
        return {"t": value.isoformat()}
    if kind is dt.date:
        return {"d": value.isoformat()}
    if kind is Decimal:
        return {"n": str(value)}
    raise TypeError(f"the spool cannot hold a {kind.__name__}")


def _untag(value: Any) -> Any:
    if type(value) is not dict:
        return value
    ((tag, text),) = value.items()
    if tag == "t":
        return dt.datetime.fromisoformat(text)
    if tag == "d":
        return dt.date.fromisoformat(text)
    if tag == "n":
        return Decimal(text)
    if tag == "f":
        return float(text)
    if tag == "i":
        return int(text)
    raise ValueError(f"unknown spool tag {tag!r}")


def encode_batch(batch: Sequence[Record]) -> bytes:
    """JSON of the batch; datetimes, dates, Decimals, non-finite floats and big
    ints become one-key objects ({"t": iso}, {"d": iso}, {"n": str} ...).
    Records hold scalars only (JSON columns are JSON text), so an object in the
    payload is always a tag."""
    return orjson.dumps([[_tag(value) for value in record] for record in batch])


def decode_batch(payload: bytes) -> list[Record]:
    return [tuple(_untag(value) for value in record) for record in orjson.loads(payload)]


def encode_frame(payload: bytes) -> bytes:
    length = struct.pack("<I", len(payload))
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload, zlib.crc32(length))) + payload


# -- the directory ----------------------------------------------------------------


@dataclass(frozen=True)
class Damage:
    offset: int
    reason: str
    skipped_bytes: int


class Spool:
    """One process's handle on the spool directory."""

    def __init__(self, directory: Path, *, max_bytes: int,
                 file_max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        # Files are sealed at this size so a replay frees space file by file while
        # the outage goes on.
        self.file_max_bytes = file_max_bytes or max(64 * 1024, min(16 * 2**20, max_bytes // 8))
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._serial = 0

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.tmp"):
            # A .tmp never got a frame (it is renamed before the first append); one
            # whose creator is gone is garbage. A live creator holds its lock.
            _remove_if_unlocked(leftover)

    # -- appending (one process, its own files) --

    def append(self, batch: Sequence[Record], *, over_cap: bool = False) -> int:
        """Append one batch as one fsynced frame; returns its size in bytes.

        Raises SpoolFull when the frame would take the spool over max_bytes,
        unless `over_cap` (shutdown: the queue is bounded, so is the overshoot)
        or the spool is empty (a batch bigger than the cap must still go somewhere).
        """
        frame = encode_frame(encode_batch(batch))
        if not over_cap:
            used, _files = self.usage()
            if used and used + len(frame) > self.max_bytes:
                raise SpoolFull(f"spool holds {used} bytes of {self.max_bytes}")
        if self._fd is None:
            self._create()
        assert self._fd is not None
        append_frame(self._fd, frame, self._size)
        self._size += len(frame)
        if self._size >= self.file_max_bytes:
            self.seal()
        return len(frame)

    def seal(self) -> None:
        """Close the file being appended to, which makes it replayable."""
        if self._fd is None:
            return
        if self._size == 0 and self._path is not None:
            self._path.unlink(missing_ok=True)
        os.close(self._fd)  # releases the lock
        self._fd = None
        self._path = None
        self._size = 0

    @property
    def holds_unsealed(self) -> bool:
        """This process has appended frames that are not replayable yet."""
        return self._fd is not None and self._size > 0

    def _create(self) -> None:
        self._serial += 1
        self._fd, self._path = create_locked(self.directory, self._serial)
        self._size = 0

    # -- reading (any process, any file) --

    def usage(self) -> tuple[int, int]:
        """(bytes, files) waiting in the spool, every process's files included."""
        total = files = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return 0, 0
        for entry in entries:
            if entry.name.endswith(SUFFIX):
                try:
                    total += entry.stat().st_size
                except FileNotFoundError:
                    continue
                files += 1
        return total, files

    def pending_files(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.iterdir() if p.name.endswith(SUFFIX))
        except FileNotFoundError:
            return []

    def claim(self) -> SpoolFile | None:
        """The oldest file no one appends to or replays, locked for this process."""
        for path in self.pending_files():
            fd = _lock_if_free(path)
            if fd is None:
                continue
            try:
                # Replayed and removed by another process between listing and locking?
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            except BaseException:
                os.close(fd)
                raise
            if not same:
                os.close(fd)
                continue
            return SpoolFile(self, path, fd)
        return None

    def close(self) -> None:
        self.seal()


class SpoolFile:
    """A claimed spool file: read its batches, then remove or quarantine it."""

    def __init__(self, spool: Spool, path: Path, fd: int) -> None:
        self.spool = spool
        self.path = path
        self._fd: int | None = fd
        self.damage: list[Damage] = []
        self.size = os.fstat(fd).st_size

    def batches(self) -> Iterator[list[Record]]:
        """Every intact batch in order. Damage is recorded in self.damage and
        skipped: reading resumes at the next frame whose checksum holds."""
        assert self._fd is not None
        with os.fdopen(os.dup(self._fd), "rb") as file:
            offset = 0
            while offset < self.size:
                file.seek(offset)
                header = file.read(_HEADER.size)
                problem = None
                if len(header) < _HEADER.size:
                    problem = "truncated frame header"
                else:
                    magic, length, crc = _HEADER.unpack(header)
                    if magic != MAGIC:
                        problem = "bad magic"
                    elif length > MAX_FRAME_BYTES or offset + _HEADER.size + length > self.size:
                        problem = "truncated or oversized frame"
                    else:
                        payload = file.read(length)
                        if zlib.crc32(payload, zlib.crc32(header[4:8])) != crc:
                            problem = "checksum mismatch"
                        else:
                            try:
                                batch = decode_batch(payload)
                            except (ValueError, TypeError) as exc:
                                problem = f"undecodable batch: {exc}"
                if problem is None:
                    offset += _HEADER.size + length
                    yield batch
                    continue
                resume = self._next_frame(file, offset + 1)
                self.damage.append(Damage(offset, problem, resume - offset))
                offset = resume

    def _next_frame(self, file: Any, start: int) -> int:
        """Offset of the next frame with a valid checksum after `start`, else the end."""
        file.seek(start)
        rest = file.read()
        position = rest.find(MAGIC)
        while position >= 0:
            header = rest[position:position + _HEADER.size]
            if len(header) == _HEADER.size:
                _magic, length, crc = _HEADER.unpack(header)
                payload = rest[position + _HEADER.size:position + _HEADER.size + length]
                if (length <= MAX_FRAME_BYTES and len(payload) == length
                        and zlib.crc32(payload, zlib.crc32(header[4:8])) == crc):
                    return start + position
            position = rest.find(MAGIC, position + 1)
        return self.size

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.release()

    def quarantine(self) -> Path:
        """Move the file aside (kept for inspection, no longer replayed)."""
        target_dir = self.spool.directory / QUARANTINE
        target_dir.mkdir(exist_ok=True)
        target = target_dir / self.path.name
        os.rename(self.path, target)
        self.release()
        return target

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def create_locked(directory: Path, serial: int) -> tuple[int, Path]:
    """A new empty file named as the spool names its files (so replay finds it),
    opened for appending and holding its exclusive flock; the directory fsynced."""
    name = f"{time.time_ns():020d}-{os.getpid()}-{serial:06d}"
    temporary = directory / (name + ".tmp")
    final = directory / (name + SUFFIX)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
                 0o600)
    try:
        # Locked before it gets its replayable name: no replayer can take it
        # between its creation and its first frame.
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(temporary, final)
        _fsync_directory(directory)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    return fd, final


def append_frame(fd: int, frame: bytes, size: int) -> float:
    """Appends `frame` to a file of `size` bytes and syncs it (fdatasync also
    syncs the new length); the seconds the sync took. On failure the file is cut
    back to `size`: no torn frame is left behind, the next append starts clean."""
    try:
        view = memoryview(frame)
        while view:
            view = view[os.write(fd, view):]
        started = time.perf_counter()
        os.fdatasync(fd)
        return time.perf_counter() - started
    except OSError:
        try:
            os.ftruncate(fd, size)
        except OSError:
            pass
        raise


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_if_free(path: Path) -> int | None:
    """An open descriptor of `path` holding its exclusive flock; None when the file
    is gone or another process holds the lock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _remove_if_unlocked(path: Path) -> None:
    fd = _lock_if_free(path)
    if fd is None:
        return
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
