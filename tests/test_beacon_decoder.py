"""collector/beacon_decoder.py, the hot path's msgspec Structs generated from the
pydantic beacon: they must declare what the model declares (every bound and
pattern), and never accept a body the model refuses, nor read one differently."""

from __future__ import annotations

import json
import random
from typing import Any

import msgspec
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import beacon as model
from collector import beacon_decoder as mirror
from collector.beacon import BeaconError, json_schema
from tests.conftest import make_beacon
from tests.test_fuzz import _JSON, MUTATIONS, from_json_schema, mutate

PAIRS = [(model.Beacon, mirror.Beacon), (model.Metric, mirror.Metric),
         (model.Event, mirror.Event), (model.Device, mirror.Device),
         (model.Navigation, mirror.Navigation)]


@pytest.mark.parametrize(("pydantic_model", "struct"), PAIRS, ids=lambda p: p.__name__)
def test_the_mirror_declares_the_models_fields_and_defaults(
    pydantic_model: type[pydantic.BaseModel], struct: type[msgspec.Struct]
) -> None:
    fields = {f.name: f for f in msgspec.structs.fields(struct)}
    assert set(fields) == set(pydantic_model.model_fields)
    for name, info in pydantic_model.model_fields.items():
        mirrored = fields[name]
        assert info.is_required() == (mirrored.required), name
        if info.default_factory is not None:
            assert mirrored.default_factory is info.default_factory, name
        elif not info.is_required():
            assert mirrored.default == info.default, name


def _comparable(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON Schema with what tells pydantic's and msgspec's spellings apart
    removed: $refs inlined, no titles or defaults, one spelling for enums, dict
    keys and pattern ends, no NUL pattern (the decoder checks the whole body) and
    no ±1e300 bound (the decoder's stand-in for "finite")."""
    if isinstance(node, list):
        return [_comparable(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _comparable(defs[node["$ref"].rpartition("/")[2]], defs)
    node = dict(node)
    if "patternProperties" in node:  # pydantic's spelling of a dict with a key pattern
        ((key_pattern, value),) = node.pop("patternProperties").items()
        node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": key_pattern}
        node["additionalProperties"] = value
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "enum" in node:
        node.pop("type", None)
        node["enum"] = sorted(node["enum"], key=repr)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "description", "default", "$defs"):
            continue
        if key == "pattern":
            value = value.removesuffix("\\Z").removesuffix("$") + "$"
            if value == mirror._NO_NUL:
                continue
        if key in ("minimum", "maximum") and abs(value) == mirror.FINITE:
            continue
        if key == "required":
            if not value:
                continue
            value = sorted(value)
        out[key] = _comparable(value, defs)
    if out.get("propertyNames") == {}:
        del out["propertyNames"]
    return out


def _constraints(node: Any) -> int:
    if isinstance(node, list):
        return sum(_constraints(item) for item in node)
    if not isinstance(node, dict):
        return 0
    bounds = {"minimum", "maximum", "pattern", "minLength", "maxLength", "maxItems",
              "maxProperties", "enum"}
    return len(bounds & node.keys()) + sum(_constraints(value) for value in node.values())


def test_the_decoder_declares_every_bound_and_pattern_of_the_model() -> None:
    ours = model.Beacon.model_json_schema()
    theirs = msgspec.json.schema(mirror.Beacon)
    ours = _comparable(ours, ours.get("$defs", {}))
    theirs = _comparable(theirs, theirs["$defs"])
    for name in ours["properties"]:
        assert ours["properties"][name] == theirs["properties"][name], name
    assert ours == theirs
    assert _constraints(ours) >= 60  # the comparison compares something


def test_a_loosened_bound_is_seen() -> None:
    ours = model.Beacon.model_json_schema()
    theirs = msgspec.json.schema(mirror.Beacon)
    theirs["$defs"]["Device"]["properties"]["vw"]["anyOf"][0]["maximum"] = 100_001
    assert _comparable(ours, ours["$defs"]) != _comparable(theirs, theirs["$defs"])


def _same_reading(body: bytes) -> tuple[bool, bool]:
    """(mirror accepted, model accepted); fails when the mirror accepts what the
    model refuses or reads a field differently."""
    fast = mirror.decode(body)
    try:
        slow = model.Beacon.model_validate_json(body)
    except pydantic.ValidationError:
        slow = None
    if fast is not None:
        assert slow is not None, f"the mirror accepted what the model refuses: {body[:300]!r}"
        assert msgspec.to_builtins(fast) == slow.model_dump(exclude_defaults=True), body[:300]
    return fast is not None, slow is not None


def test_schema_beacons_and_mutations_read_the_same() -> None:
    schema = json_schema()
    accepted = {"both": 0, "model only": 0}

    @settings(max_examples=1500, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(beacon=from_json_schema(schema, schema), how=st.sampled_from(MUTATIONS),
           rng=st.randoms(use_true_random=False), junk=_JSON)
    def check(beacon: dict[str, Any], how: str, rng: random.Random, junk: Any) -> None:
        fast, slow = _same_reading(mutate(beacon, how, rng, junk))
        if slow:
            accepted["both" if fast else "model only"] += 1

    check()
    # Stricter is allowed (pydantic then decides), but the mirror must take the
    # common case or it saves nothing.
    assert accepted["both"] >= 0.9 * (accepted["both"] + accepted["model only"]), accepted


@pytest.mark.parametrize("case", [
    {"pv": "abcdefgh\n"},                       # Python's `$` matches before a final newline
    {"sid": "abcdefgh\n"},
    {"site": "demo\n"},
    {"url": "https://shop.example/\n\x00"},
    {"seq": 1.0},                               # strict: a float is not an integer
    {"seq": "1"},
    {"t0": 1e15},
    {"dims": {"Page": "x"}},
    {"dims": {f"k{i}": "x" for i in range(21)}},
    {"metrics": [{"name": "LCP", "value": -1}]},
    {"metrics": [{"name": "LCP", "value": 1, "attribution": {"a": "x" * 513}}]},
    {"events": [{"name": "buy", "currency": "eur"}]},
    {"device": {"save_data": 1}},
    {"nav": {"transfer_size": 2.5}},
    {"v": 2},
    {"release": "a\x00b"},                     # NUL: checked on the body, not per string
    {"dims": {"page_type": "\x00"}},
    {"metrics": [{"name": "LCP", "value": 1, "attribution": {"a\x00": "x"}}]},
])
def test_what_the_model_refuses_the_mirror_refuses(case: dict[str, Any]) -> None:
    body = json.dumps(make_beacon(**case)).encode()
    assert _same_reading(body) == (False, False)
    with pytest.raises(BeaconError):
        mirror.parse(body)


def test_parse_gives_the_struct_also_where_the_model_decides() -> None:
    beacon = make_beacon()
    plain = mirror.parse(json.dumps(beacon).encode())
    assert isinstance(plain, mirror.Beacon)
    # A NUL escape anywhere sends the body to the model (decode()); in a field the
    # model ignores, the model accepts it, and enrichment still gets the Struct.
    body = json.dumps(dict(beacon, note="\x00")).encode()
    assert mirror.decode(body) is None
    parsed = mirror.parse(body)
    assert isinstance(parsed, mirror.Beacon)
    assert msgspec.to_builtins(parsed) == msgspec.to_builtins(plain)


def test_a_finite_float_the_model_takes_the_mirror_takes() -> None:
    big = make_beacon(metrics=[{"name": "LCP", "value": 1, "attribution": {"n": 1e301}}])
    body = json.dumps(big).encode()
    assert _same_reading(body) == (True, True)
    assert mirror.parse(body).metrics[0].attribution == {"n": 1e301}
