"""Caps on beacons per page view and per session (collector/caps.py)."""

from __future__ import annotations

from collector.caps import BeaconCaps


def accept(caps: BeaconCaps, pv: str, sid: str | None, seq: int = 0) -> str | None:
    refusal = caps.refusal("demo", pv, sid, seq)
    if refusal is None:
        caps.count("demo", pv, sid)
    return refusal


def test_page_view_cap() -> None:
    caps = BeaconCaps(per_page_view=3, per_session=0)
    assert [accept(caps, "pv000001", None, seq) for seq in range(5)] == [
        None, None, None, "page_view_cap", "page_view_cap"]
    assert accept(caps, "pv000002", None) is None  # another page view


def test_resending_the_same_seq_counts_too() -> None:
    caps = BeaconCaps(per_page_view=3, per_session=0)
    assert [accept(caps, "pv000001", None, 0) for _ in range(4)][-1] == "page_view_cap"


def test_seq_beyond_the_cap_is_refused_without_any_count() -> None:
    # Holds in every worker: it needs no memory of earlier beacons.
    caps = BeaconCaps(per_page_view=100, per_session=0)
    assert accept(caps, "pv000001", None, seq=100) == "page_view_cap"
    assert accept(caps, "pv000001", None, seq=99) is None


def test_session_cap_across_page_views() -> None:
    caps = BeaconCaps(per_page_view=10, per_session=5)
    answers = [accept(caps, f"pv{i:06d}", "session01") for i in range(7)]
    assert answers == [None] * 5 + ["session_cap"] * 2
    assert accept(caps, "pv999999", "session02") is None
    # a page view without sid is its own session
    assert [accept(caps, "pvalone01", None, seq) for seq in range(6)][-1] == "session_cap"


def test_caps_are_per_site() -> None:
    caps = BeaconCaps(per_page_view=1, per_session=0)
    assert caps.refusal("demo", "pv000001", None, 0) is None
    caps.count("demo", "pv000001", None)
    assert caps.refusal("demo", "pv000001", None, 0) == "page_view_cap"
    assert caps.refusal("shop", "pv000001", None, 0) is None


def test_memory_is_bounded_and_ids_are_not_kept() -> None:
    caps = BeaconCaps(per_page_view=5, per_session=5, tracked=100)
    for i in range(1000):
        caps.count("demo", f"pv{i:06d}", f"sid{i:06d}")
    assert len(caps._page_views) == 100 and len(caps._sessions) == 100  # type: ignore[arg-type]
    keys = list(caps._page_views._counts)  # type: ignore[union-attr]
    # 64-bit hashes, not the ids: nothing kept says which page view it was.
    assert all(isinstance(key, int) and key.bit_length() <= 64 for key in keys)
    # the least recently seen were forgotten, the latest are still counted
    page_views = caps._page_views
    assert page_views is not None and page_views._counts[page_views._key("demo", "pv000999")] == 1


def test_zero_turns_a_cap_off() -> None:
    caps = BeaconCaps(per_page_view=0, per_session=0)
    assert all(accept(caps, "pv000001", "s0000001", seq) is None for seq in range(10_000))
