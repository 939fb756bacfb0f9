"""The disk spool (collector/spool.py): exact round trips of the writer's records,
framing that detects damage, file locks between processes, the size cap."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.beacon_decoder import parse as parse_beacon
from collector.enrich import to_record
from collector.row import COLUMNS
from collector.spool import MAGIC, Spool, SpoolFull, decode_batch, encode_batch
from tests.conftest import MOBILE_UA, make_beacon

NOW = dt.datetime(2026, 11, 26, 10, 30, 15, 123456, tzinfo=dt.UTC)


def real_record(**fields: object) -> tuple[object, ...]:
    beacon = parse_beacon(json.dumps(make_beacon(**fields)).encode())
    return to_record(beacon, NOW, MOBILE_UA, "FR")


def test_a_real_record_round_trips_exactly() -> None:
    record = real_record()
    assert len(record) == len(COLUMNS)
    assert isinstance(record[COLUMNS.index("revenue")], Decimal)
    assert isinstance(record[COLUMNS.index("day")], dt.date)
    (back,) = decode_batch(encode_batch([record]))
    assert back == record
    assert [type(v) for v in back] == [type(v) for v in record]
    assert back[COLUMNS.index("received_at")].tzinfo is not None


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(),
    st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=2))])),
    st.datetimes(), st.dates(), st.decimals(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(scalars, max_size=8).map(tuple), max_size=5))
def test_any_batch_of_scalars_round_trips(batch: list[tuple[object, ...]]) -> None:
    back = decode_batch(encode_batch(batch))
    assert back == batch
    for record, returned in zip(batch, back, strict=True):
        assert [type(v) for v in returned] == [type(v) for v in record]
        for value, again in zip(record, returned, strict=True):
            if isinstance(value, dt.datetime):
                assert again.utcoffset() == value.utcoffset()
            if isinstance(value, Decimal):
                assert str(again) == str(value)  # 1.10 stays 1.10


def test_non_finite_floats_and_big_ints_keep_their_value() -> None:
    batch = [(float("inf"), float("-inf"), 2**70, -(2**70))]
    assert decode_batch(encode_batch(batch)) == batch
    (nan,) = decode_batch(encode_batch([(float("nan"),)]))[0]
    assert nan != nan


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError):
        encode_batch([({"a": 1},)])


def spool_at(tmp_path: Path, **kwargs: int) -> Spool:
    spool = Spool(tmp_path / "spool", max_bytes=kwargs.pop("max_bytes", 10 * 2**20), **kwargs)
    spool.open()
    return spool


def replay_all(spool: Spool) -> tuple[list[tuple[object, ...]], list[Path]]:
    """Every record in order, and the files quarantined."""
    records: list[tuple[object, ...]] = []
    quarantined = []
    while (claimed := spool.claim()) is not None:
        for batch in claimed.batches():
            records.extend(batch)
        if claimed.damage:
            quarantined.append(claimed.quarantine())
        else:
            claimed.remove()
    return records, quarantined


def test_batches_come_back_in_order_across_files(tmp_path: Path) -> None:
    spool = spool_at(tmp_path, file_max_bytes=64 * 1024)
    batches = [[real_record(pv=f"order{i:04d}{j:02d}") for j in range(10)] for i in range(30)]
    for batch in batches:
        spool.append(batch)
    spool.seal()
    assert spool.usage()[1] > 1  # it rotated
    records, quarantined = replay_all(spool)
    assert records == [r for batch in batches for r in batch]
    assert quarantined == [] and spool.usage() == (0, 0)


def test_the_file_being_appended_is_not_replayable_until_sealed(tmp_path: Path) -> None:
    spool = spool_at(tmp_path)
    spool.append([real_record()])
    assert spool.holds_unsealed
    other = Spool(spool.directory, max_bytes=spool.max_bytes)
    assert other.claim() is None  # locked by its writer, even from another handle
    spool.seal()
    claimed = other.claim()
    assert claimed is not None
    assert spool.claim() is None  # and a claimed file is nobody else's
    claimed.remove()


def _claim_in_child(directory: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    claimed = Spool(Path(directory), max_bytes=2**20).claim()
    queue.put(None if claimed is None else claimed.path.name)


def test_another_process_cannot_claim_a_claimed_file(tmp_path: Path) -> None:
    spool = spool_at(tmp_path)
    spool.append([real_record()])
    spool.seal()
    claimed = spool.claim()
    assert claimed is not None
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_claim_in_child, args=(str(spool.directory), queue))
    child.start()
    child.join(30)
    assert queue.get(timeout=5) is None
    claimed.release()
    child = context.Process(target=_claim_in_child, args=(str(spool.directory), queue))
    child.start()
    child.join(30)
    assert queue.get(timeout=5) == claimed.path.name


def test_a_torn_tail_is_detected_and_the_good_frames_kept(tmp_path: Path) -> None:
    spool = spool_at(tmp_path)
    good = [[real_record(pv=f"torntail{i:04d}")] for i in range(3)]
    for batch in good:
        spool.append(batch)
    spool.seal()
    (path,) = spool.pending_files()
    with path.open("ab") as file:  # a crash in the middle of the fourth append
        file.write(MAGIC + (5000).to_bytes(4, "little") + b"\0\0\0\0" + b"[[\"torn")
    records, quarantined = replay_all(spool)
    assert records == [r for batch in good for r in batch]
    assert [q.name for q in quarantined] == [path.name]
    assert quarantined[0].parent.name == "quarantine"


def test_a_flipped_byte_loses_one_batch_only(tmp_path: Path) -> None:
    spool = spool_at(tmp_path)
    batches = [[real_record(pv=f"flipped{i:05d}")] for i in range(5)]
    sizes = [spool.append(batch) for batch in batches]
    spool.seal()
    (path,) = spool.pending_files()
    data = bytearray(path.read_bytes())
    data[sizes[0] + sizes[1] + 40] ^= 0xFF  # inside the third frame's payload
    path.write_bytes(bytes(data))
    claimed = spool.claim()
    assert claimed is not None
    records = [r for batch in claimed.batches() for r in batch]
    assert records == [batches[i][0] for i in (0, 1, 3, 4)]
    assert [(d.offset, d.reason) for d in claimed.damage] == [(sizes[0] + sizes[1],
                                                               "checksum mismatch")]
    claimed.release()


def test_garbage_is_quarantined_not_fatal(tmp_path: Path) -> None:
    spool = spool_at(tmp_path)
    (spool.directory / "00000000000000000001-1-000001.spool").write_bytes(os.urandom(4096))
    records, quarantined = replay_all(spool)
    assert records == [] and len(quarantined) == 1
    assert spool.usage() == (0, 0)


def test_the_cap_refuses_a_batch_that_does_not_fit(tmp_path: Path) -> None:
    spool = spool_at(tmp_path, max_bytes=20_000)
    batch = [real_record() for _ in range(5)]
    size = spool.append(batch)  # an empty spool takes any batch
    appended = 1
    with pytest.raises(SpoolFull):
        for _ in range(100):
            spool.append(batch)
            appended += 1
    assert appended * size <= 20_000 < (appended + 1) * size
    spool.append(batch, over_cap=True)  # shutdown: past the cap, bounded by the queue
    assert spool.usage()[0] == (appended + 1) * size


def test_leftover_temporary_files_are_removed_at_open(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    (directory / "00000000000000000001-1-000001.tmp").write_bytes(b"")
    Spool(directory, max_bytes=2**20).open()
    assert list(directory.iterdir()) == []
