"""Fuzzing POST /beacon over real HTTP (SECURITY.md): whatever a client sends,
the collector never answers 5xx, never dies, stores nothing from a body it
refused, and stores everything it accepted.

Three sources of cases, a few thousand in all:
- beacons generated from the JSON Schema the collector serves
  (GET /beacon.schema.json), as they are and after random mutations (fields
  dropped or retyped, extreme numbers, NUL and lone surrogates, deep nesting,
  duplicate keys, truncation, flipped bytes ...);
- raw bytes under every content type;
- schemathesis, driven by the OpenAPI document at GET /openapi.json, against
  every route, with valid and invalid data.

Every case that carries a page-view id gets a fresh one, so the database tells
which bodies were stored. The answers by status are printed at the end.
"""

from __future__ import annotations

import json
import random
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DESKTOP_UA, MOBILE_UA, Collector, wait_for

SCHEMA_CASES = 1800
RAW_CASES = 1000
SCHEMATHESIS_CASES = 100  # per generation mode of POST /beacon; fewer for the other routes

HEADLESS_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "HeadlessChrome/131.0.0.0 Safari/537.36")
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BROWSERS = (MOBILE_UA, DESKTOP_UA)
USER_AGENTS = st.sampled_from([MOBILE_UA] * 6 + [DESKTOP_UA] * 2 + [BOT_UA, HEADLESS_UA, ""])
CONTENT_TYPES = st.sampled_from(
    ["text/plain;charset=UTF-8"] * 4 + ["application/json"] * 3
    + ["text/plain", "application/x-www-form-urlencoded", "", "text/html",
       "application/json; charset=utf-16", "multipart/form-data; boundary=x"])
def fuzz_settings(cases: int) -> settings:
    return settings(max_examples=cases, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@dataclass
class Fuzzed:
    collector: Collector
    client: httpx.Client
    run: str = field(default_factory=lambda: "fz" + secrets.token_hex(3))
    answers: dict[str, Counter[int]] = field(default_factory=dict)
    stored: set[str] = field(default_factory=set)  # 204 from a browser: must be stored
    refused: set[str] = field(default_factory=set)  # anything else: must not be
    serial: int = 0

    def fresh_id(self) -> str:
        self.serial += 1
        return f"{self.run}{self.serial:08d}"

    def count(self, source: str, status: int) -> None:
        self.answers.setdefault(source, Counter())[status] += 1


@pytest.fixture(scope="module")
def fuzzed(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    # `binome serve` with its production settings; only the rate limit is off.
    collector = Collector(database_url, tmp_path_factory.mktemp("fuzz") / "collector.log",
                          rate_limit_per_minute=0, batch_max_ms=20,
                          store_automated=False)
    with httpx.Client(base_url=collector.url, timeout=15) as client:
        yield Fuzzed(collector, client)
    collector.stop()


def send(fz: Fuzzed, source: str, body: bytes, content_type: str, user_agent: str) -> int:
    headers = {"Content-Type": content_type, "User-Agent": user_agent}
    try:
        response = fz.client.post("/beacon", content=body, headers=headers)
    except httpx.TransportError as exc:
        alive = fz.collector.process.poll() is None
        pytest.fail(f"no answer ({exc!r}); collector alive: {alive}; body {body[:200]!r}")
    status = response.status_code
    fz.count(source, status)
    assert status < 500, (status, response.text, body[:300])
    if status != 204:
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) == {"error", "detail"}
    pv = _our_pv(fz, body)
    if pv is not None:
        (fz.stored if status == 204 and user_agent in BROWSERS else fz.refused).add(pv)
    return status


def _our_pv(fz: Fuzzed, body: bytes) -> str | None:
    """The page-view id the collector would store, when it is one of this run's."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None
    pv = parsed.get("pv") if isinstance(parsed, dict) else None
    return pv if isinstance(pv, str) and pv.startswith(fz.run) else None


# --- hypothesis strategies from a JSON Schema ------------------------------------------
# hypothesis-jsonschema would do this, but its last release (0.23.1) relies on
# Hypothesis internals that Hypothesis 6.17x no longer has. pydantic's schemas use
# a small subset of JSON Schema, covered here; any other keyword fails loudly so
# that a change of the model cannot silently narrow the fuzzing.
_ANNOTATIONS = frozenset({"title", "description", "default", "$schema", "$id", "$defs"})
_NO_NUL = "^[^\\x00]*$"


def from_json_schema(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        return st.deferred(lambda: from_json_schema(root["$defs"][name], root))
    if "anyOf" in node:
        return st.one_of([from_json_schema(branch, root) for branch in node["anyOf"]])
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    known = _ANNOTATIONS | {"type"} | _KEYWORDS.get(kind, frozenset())
    unknown = set(node) - known
    assert not unknown, f"from_json_schema: unsupported {sorted(unknown)} in {node}"
    if kind == "string":
        return _string(node.get("pattern"), node.get("minLength", 0), node.get("maxLength", 64))
    if kind == "integer":
        return st.integers(node.get("minimum"), node.get("maximum"))
    if kind == "number":
        low, high = node.get("minimum"), node.get("maximum")
        return st.integers(int(low or 0), int(min(high or 10**6, 10**6))) | st.floats(
            low, high, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_json_schema(node["items"], root), min_size=node.get("minItems", 0),
                        max_size=min(node.get("maxItems", 3), 3))
    if kind == "object":
        return _object(node, root)
    raise AssertionError(f"from_json_schema: unsupported type in {node}")


_KEYWORDS = {
    "string": frozenset({"pattern", "minLength", "maxLength"}),
    "integer": frozenset({"minimum", "maximum"}),
    "number": frozenset({"minimum", "maximum"}),
    "array": frozenset({"items", "minItems", "maxItems"}),
    "object": frozenset({"properties", "required", "patternProperties", "propertyNames",
                         "additionalProperties", "maxProperties"}),
}


def _string(pattern: str | None, min_size: int, max_size: int) -> st.SearchStrategy[str]:
    if pattern is None or pattern == _NO_NUL:
        return st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                       min_size=min_size, max_size=min(max_size, 80))
    # Python's `$` also matches before a final newline; the model's regex does not.
    core = pattern.removeprefix("^").removesuffix("$")
    pieces = _character_classes(core)
    if pieces is None:
        strings = st.from_regex(core, fullmatch=True)
    else:  # the same strings, many times faster than from_regex
        strings = st.tuples(*(st.text(alphabet, min_size=low, max_size=high)
                              for alphabet, low, high in pieces)).map("".join)
    return strings.filter(lambda s: min_size <= len(s) <= max_size)


_PIECE = re.compile(r"\[([^\]\\^]+)\](?:\{(\d+)(?:,(\d+))?\})?")


def _character_classes(pattern: str) -> list[tuple[str, int, int]] | None:
    """[a-z0-9][a-z0-9_-]{0,62} as [(alphabet, min, max), ...]; None for other patterns."""
    pieces = []
    position = 0
    while position < len(pattern):
        match = _PIECE.match(pattern, position)
        if match is None:
            return None
        members, low, high = match.groups()
        alphabet = re.sub(r"(.)-(.)", lambda r: "".join(
            chr(c) for c in range(ord(r[1]), ord(r[2]) + 1)), members)
        count = int(low) if low else 1
        pieces.append((alphabet, count, int(high) if high else count))
        position = match.end()
    return pieces


def _object(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = node.get("properties", {})
    if properties:
        required = set(node.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_json_schema(v, root) for k, v in properties.items() if k in required},
            optional={k: from_json_schema(v, root) for k, v in properties.items()
                      if k not in required})
    [(key_pattern, value_schema)] = node.get("patternProperties", {}).items()
    names = node.get("propertyNames", {})
    keys = _string(key_pattern, names.get("minLength", 0), names.get("maxLength", 64))
    return st.dictionaries(keys, from_json_schema(value_schema, root),
                           max_size=min(node.get("maxProperties", 3), 3))


# --- mutations --------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=10)
_EXTREMES = ["-1", "-0.0", "1.5", "1e308", "1e309", "-1e309", "18446744073709551616",
             "1" + "0" * 400, "1e-400", "NaN", "Infinity", '"12"', "true", "null", "[]", "{}"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from _paths(item, (*prefix, index))


def _set(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = new


def _raw_marker(beacon: dict[str, Any], rng: random.Random, raw: str) -> bytes:
    """The beacon's JSON with `raw` (any text, valid JSON or not) at a random place."""
    paths = [p for p in _paths(beacon) if p[0] != "pv"]
    if paths:
        _set(beacon, rng.choice(paths), "\x01MARK\x01")
    else:
        beacon["x"] = "\x01MARK\x01"
    return json.dumps(beacon).replace('"\\u0001MARK\\u0001"', raw, 1).encode()


def mutate(beacon: dict[str, Any], how: str, rng: random.Random, junk: Any) -> bytes:
    paths = [p for p in _paths(beacon) if p[0] != "pv"]
    if how == "drop" and paths:
        path = rng.choice(paths)
        parent = beacon
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
    elif how == "retype" and paths:
        _set(beacon, rng.choice(paths), junk)
    elif how == "extreme":
        return _raw_marker(beacon, rng, rng.choice(_EXTREMES))
    elif how == "nul":
        return _raw_marker(beacon, rng, '"a\\u0000b"')
    elif how == "surrogate":
        return _raw_marker(beacon, rng, rng.choice(['"\\ud800"', '"x\\udfff"', '"\\ud800\\u0041"']))
    elif how == "invalid_utf8":
        return _raw_marker(beacon, rng, '"\xff\xfe"').replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe")
    elif how == "long":
        return _raw_marker(beacon, rng, json.dumps("x" * rng.choice([129, 2049, 70_000])))
    elif how == "nest":
        depth = rng.choice([100, 1000, 20_000])
        return _raw_marker(beacon, rng, "[" * depth + "]" * depth)
    elif how == "duplicate_key":
        site = json.dumps(rng.choice(["demo", "nobody-here", "BAD SITE"]))
        return b'{"site": ' + site.encode() + b", " + json.dumps(beacon).encode()[1:]
    elif how == "wrap":
        return json.dumps(rng.choice([[beacon], {"beacon": beacon}, json.dumps(beacon)])).encode()
    body = json.dumps(beacon, ensure_ascii=rng.random() < 0.5).encode()
    if how == "truncate":
        return body[: rng.randrange(len(body))]
    if how == "flip":
        flipped = bytearray(body)
        for _ in range(rng.randint(1, 8)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        return bytes(flipped)
    return body


# Hypothesis favours the first entries: the mutations come before "none".
MUTATIONS = ["drop", "retype", "extreme", "nul", "surrogate", "invalid_utf8", "long", "nest",
             "duplicate_key", "wrap", "truncate", "flip"] + ["none"] * 10


# --- the tests --------------------------------------------------------------------------

def test_beacons_from_the_schema_and_their_mutations(fuzzed: Fuzzed) -> None:
    schema = fuzzed.client.get("/beacon.schema.json").json()
    beacons = from_json_schema(schema, schema)

    @fuzz_settings(SCHEMA_CASES)
    @given(beacon=beacons, demo=st.booleans(), small_seq=st.booleans(), with_sid=st.booleans(),
           how=st.sampled_from(MUTATIONS), rng=st.randoms(use_true_random=False),
           junk=_JSON, content_type=CONTENT_TYPES, user_agent=USER_AGENTS)
    def fuzz(beacon: dict[str, Any], demo: bool, small_seq: bool, with_sid: bool, how: str,
             rng: random.Random, junk: Any, content_type: str, user_agent: str) -> None:
        # Fresh ids so the database can tell this body's fate; a registered site
        # most of the time, so that bodies get past the site check.
        beacon["pv"] = fuzzed.fresh_id()
        if with_sid:
            beacon["sid"] = fuzzed.fresh_id()
        else:
            beacon.pop("sid", None)
        if demo:
            beacon["site"] = "demo"
        if small_seq:  # under the cap per page view (100), as the snippet's are
            beacon["seq"] = beacon["seq"] % 100
        body = mutate(beacon, how, rng, junk)
        send(fuzzed, "schema" if how == "none" else "mutated", body, content_type, user_agent)

    fuzz()


def test_raw_bytes(fuzzed: Fuzzed) -> None:
    @fuzz_settings(RAW_CASES)
    @given(body=st.binary(max_size=2048) | st.text(max_size=512).map(str.encode),
           content_type=CONTENT_TYPES, user_agent=USER_AGENTS)
    def fuzz(body: bytes, content_type: str, user_agent: str) -> None:
        assert send(fuzzed, "raw", body, content_type, user_agent) != 204 or _valid_json(body)

    fuzz()


def _valid_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


@schemathesis.serializer("text/plain")
def _beacon_as_text(context: Any, value: Any) -> bytes:
    # text/plain carries the beacon's JSON (what navigator.sendBeacon sends).
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def test_schemathesis_against_the_openapi_document(fuzzed: Fuzzed) -> None:
    schema = schemathesis.openapi.from_url(fuzzed.collector.url + "/openapi.json")
    # A schema-valid beacon may still be refused, by design: JSON Schema counts 16.0
    # as an integer where the strict model wants 16, and the schema cannot state the
    # 64 KiB body cap. Every other check runs: no 5xx, documented statuses, content
    # types, headers and response bodies.
    excluded = [schemathesis.checks.positive_data_acceptance]
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    session = requests.Session()
    session.headers["User-Agent"] = MOBILE_UA
    for result in schema.get_all_operations():
        operation = result.ok()
        has_input = bool(operation.get_request_payload_content_types()) or bool(
            list(operation.iter_parameters()))
        for mode in modes if has_input else modes[:1]:
            # The dashboard runs the analysts' views: a few calls say enough.
            examples = {"POST /beacon": SCHEMATHESIS_CASES, "GET /dashboard": 2}.get(
                operation.label, 10)
            _run_schemathesis(fuzzed, operation, mode, examples, session, excluded)


def _run_schemathesis(fuzzed: Fuzzed, operation: Any, mode: Any, examples: int,
                      session: requests.Session, excluded: list[Any]) -> None:
    source = f"schemathesis {operation.label} {mode.value}"

    @fuzz_settings(examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        # 30 s: the dashboard computes the shared test database's busiest site live
        # (no snapshot here), past schemathesis's 10 s default under a full suite's load.
        response = case.call_and_validate(session=session, excluded_checks=excluded, timeout=30)
        fuzzed.count(source, response.status_code)

    call()


async def test_the_collector_survived_and_kept_only_what_it_accepted(
    fuzzed: Fuzzed, conn: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fuzzed.collector.process.poll() is None, "the collector died"
    assert fuzzed.client.get("/healthz").status_code == 200
    assert fuzzed.client.get("/readyz").status_code == 200
    if fuzzed.stored:
        stored = await wait_for(conn, "SELECT count(DISTINCT pv) FROM binome.beacons"
                                " WHERE pv = ANY($1)", list(fuzzed.stored),
                                expect=len(fuzzed.stored))
        assert stored == len(fuzzed.stored), "a beacon answered 204 was not stored"
    leaked = await conn.fetch("SELECT pv FROM binome.beacons WHERE pv = ANY($1)",
                              list(fuzzed.refused))
    assert not leaked, f"stored from refused bodies: {[r['pv'] for r in leaked][:10]}"
    stored_run = await conn.fetchval("SELECT count(*) FROM binome.beacons WHERE pv LIKE $1",
                                     fuzzed.run + "%")
    assert stored_run == len(fuzzed.stored)
    dead = await conn.fetchval("SELECT count(*) FROM binome.dead_letters"
                               " WHERE record->>'pv' LIKE $1", fuzzed.run + "%")
    assert dead == 0, "PostgreSQL refused rows the collector had accepted"
    total = sum(sum(c.values()) for c in fuzzed.answers.values())
    with capsys.disabled():
        print(f"\nfuzz: {total} cases, {len(fuzzed.stored)} stored, "
              f"{len(fuzzed.refused)} refused with a page-view id")
        for source, answers in sorted(fuzzed.answers.items()):
            by_status = ", ".join(f"{s}: {n}" for s, n in sorted(answers.items()))
            print(f"  {source}: {sum(answers.values())} ({by_status})")
    log = fuzzed.collector.log_path.read_text()
    assert not re.search(r'Traceback|ERROR|"level":\s*"error"', log), log[-2000:]
