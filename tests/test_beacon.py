"""The beacon model (collector/beacon.py): every field rule of docs/beacon-format.md,
"The beacon"."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collector.beacon import Beacon, BeaconError, json_schema, parse_beacon
from tests.conftest import make_beacon


def _set(path: str, value: Any) -> dict[str, Any]:
    """The example beacon with one (dotted) field replaced; value None deletes it."""
    beacon = make_beacon()
    *parents, last = path.split(".")
    target: Any = beacon
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is _DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return beacon


_DELETE = object()

GOOD = [
    ("the contract's example", "v", 1),
    ("consent absent means performance", "consent", _DELETE),
    ("consent performance", "consent", "performance"),
    ("site with digits, dash, underscore", "site", "shop-2_fr"),
    ("pv of 8 chars", "pv", "abcdEF_-"),
    ("pv of 64 chars", "pv", "a" * 64),
    ("sid absent", "sid", _DELETE),
    ("t0 absent", "t0", _DELETE),
    ("t0 an integer", "t0", 1764150000000),
    ("seq large", "seq", 9999),
    ("http url", "url", "http://localhost:8000/"),
    ("url of 2048 chars", "url", "https://a.example/" + "x" * 2030),
    ("empty referrer", "ref", ""),
    ("ref absent", "ref", _DELETE),
    ("release absent", "release", _DELETE),
    ("20 dims", "dims", {f"k{i}": "v" for i in range(20)}),
    ("dim value of 128 chars", "dims", {"page_type": "x" * 128}),
    ("no device", "device", _DELETE),
    ("device empty", "device", {}),
    ("nav absent", "nav", _DELETE),
    ("integer metric value", "metrics.0.value", 2000),
    ("unknown metric name kept", "metrics", [{"name": "LoAF", "value": 3.0}]),
    ("INP", "metrics", [{"name": "INP", "value": 120, "delta": 120, "id": "v5-1-2",
                         "rating": "good", "navigationType": "back-forward-cache"}]),
    ("negative delta (INP can shrink)", "metrics.0.delta", -10.5),
    ("event without value", "events", [{"name": "signup"}]),
    ("no events", "events", []),
    ("unknown top-level field ignored", "future_field", {"x": 1}),
    ("unicode in dims", "dims", {"page_type": "produit-été-😀"}),
]

BAD = [
    ("v missing", "v", _DELETE, "v"),
    ("v 2", "v", 2, "v"),
    ("v as string", "v", "1", "v"),
    ("consent unknown", "consent", "all", "consent"),
    ("consent none is never sent", "consent", "none", "consent"),
    ("site uppercase", "site", "Shop", "site"),
    ("site too long", "site", "a" * 64, "site"),
    ("site empty", "site", "", "site"),
    ("site missing", "site", _DELETE, "site"),
    ("pv too short", "pv", "abc", "pv"),
    ("pv too long", "pv", "a" * 65, "pv"),
    ("pv bad chars", "pv", "abc def!!", "pv"),
    ("pv number", "pv", 12345678, "pv"),
    ("sid bad chars", "sid", "../../etc", "sid"),
    ("seq negative", "seq", -1, "seq"),
    ("seq float", "seq", 1.0, "seq"),
    ("seq string", "seq", "0", "seq"),
    ("seq missing", "seq", _DELETE, "seq"),
    ("t0 negative", "t0", -1, "t0"),
    ("t0 string", "t0", "yesterday", "t0"),
    ("url ftp", "url", "ftp://shop.example/", "url"),
    ("url javascript", "url", "javascript:alert(1)", "url"),
    ("url relative", "url", "/p/42", "url"),
    ("url too long", "url", "https://a.example/" + "x" * 2031, "url"),
    ("url missing", "url", _DELETE, "url"),
    ("url with NUL", "url", "https://a.example/\u0000", "url"),
    ("ref not a string", "ref", 42, "ref"),
    ("ref too long", "ref", "https://r.example/" + "x" * 2031, "ref"),
    ("release too long", "release", "r" * 65, "release"),
    ("21 dims", "dims", {f"k{i}": "v" for i in range(21)}, "dims"),
    ("dim key uppercase", "dims", {"PageType": "x"}, "dims"),
    ("dim key too long", "dims", {"k" * 33: "x"}, "dims"),
    ("dim value too long", "dims", {"page_type": "x" * 129}, "dims"),
    ("dim value a number", "dims", {"page_type": 3}, "dims"),
    ("dim value with NUL", "dims", {"page_type": "a\u0000b"}, "dims"),
    ("dims a list", "dims", ["a"], "dims"),
    ("device vw negative", "device.vw", -1, "device.vw"),
    ("device vw float", "device.vw", 390.5, "device.vw"),
    ("device dpr string", "device.dpr", "3", "device.dpr"),
    ("device ect unknown", "device.ect", "5g", "device.ect"),
    ("device save_data string", "device.save_data", "false", "device.save_data"),
    ("nav ttfb negative", "nav.ttfb", -3, "nav.ttfb"),
    ("nav load absurd", "nav.load", 1e12, "nav.load"),
    ("nav type unknown", "nav.type", "teleport", "nav.type"),
    ("metric value negative", "metrics.0.value", -1, "metrics.0.value"),
    ("metric value string", "metrics.0.value", "2140", "metrics.0.value"),
    ("metric value huge", "metrics.0.value", 1e300, "metrics.0.value"),
    ("metric name lowercase", "metrics.0.name", "lcp", "metrics.0.name"),
    ("metric without value", "metrics.0.value", _DELETE, "metrics.0.value"),
    ("metric rating unknown", "metrics.0.rating", "great", "metrics.0.rating"),
    ("metric id too long", "metrics.0.id", "x" * 129, "metrics.0.id"),
    ("metric attribution too long", "metrics.0.attribution", {"target": "x" * 513},
     "metrics.0.attribution"),
    ("51 metrics", "metrics", [{"name": "CLS", "value": 0}] * 51, "metrics"),
    ("metrics not a list", "metrics", {"name": "LCP"}, "metrics"),
    ("event value negative", "events.0.value", -5, "events.0.value"),
    ("event currency lowercase", "events.0.currency", "eur", "events.0.currency"),
    ("event name empty", "events.0.name", "", "events.0.name"),
    ("21 events", "events", [{"name": "x"}] * 21, "events"),
]


@pytest.mark.parametrize(("case", "path", "value"), GOOD, ids=[c[0] for c in GOOD])
def test_good_beacons_are_accepted(case: str, path: str, value: Any) -> None:
    beacon = parse_beacon(json.dumps(_set(path, value)).encode())
    assert isinstance(beacon, Beacon)


@pytest.mark.parametrize(("case", "path", "value", "field"), BAD, ids=[c[0] for c in BAD])
def test_bad_beacons_name_the_field(case: str, path: str, value: Any, field: str) -> None:
    with pytest.raises(BeaconError) as refused:
        parse_beacon(json.dumps(_set(path, value)).encode())
    assert refused.value.code == "invalid_beacon"
    fields = [d["field"] for d in refused.value.detail]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields


@pytest.mark.parametrize("body", [
    b"", b"{", b"not json", b'{"v": 1,}', b"\xff\xfe", b'{"url": "\\ud800"}',
    b'{"v": 1} trailing',
])
def test_malformed_json(body: bytes) -> None:
    with pytest.raises(BeaconError) as refused:
        parse_beacon(body)
    assert refused.value.code == "malformed_json"


@pytest.mark.parametrize("raw", [b"1e400", b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_are_refused(raw: bytes) -> None:
    body = json.dumps(make_beacon()).encode().replace(b'"value": 2140.5', b'"value": ' + raw)
    with pytest.raises(BeaconError):
        parse_beacon(body)


def test_a_json_array_is_not_a_beacon() -> None:
    with pytest.raises(BeaconError) as refused:
        parse_beacon(b"[1, 2]")
    assert refused.value.code == "invalid_beacon"


def test_defaults() -> None:
    beacon = parse_beacon(json.dumps(_set("consent", _DELETE)).encode())
    assert beacon.consent == "performance"
    minimal = parse_beacon(b'{"v":1,"site":"demo","pv":"abcdefgh","seq":0,"url":"https://a.b/"}')
    assert minimal.sid is None and minimal.dims == {} and minimal.metrics == []


def test_schema_is_generated_from_the_model() -> None:
    schema = json_schema()
    assert schema["type"] == "object"
    assert set(schema["required"]) == {"v", "site", "pv", "seq", "url"}
    assert schema["properties"]["site"]["pattern"] == "^[a-z0-9][a-z0-9_-]{0,62}$"
    assert schema["properties"]["url"]["maxLength"] == 2048
    assert "Metric" in schema["$defs"] and "Event" in schema["$defs"]
