"""The hot path's beacon decoder: msgspec Structs that mirror collector/beacon.py.

The pydantic models of beacon.py stay the definition of the beacon: its JSON
Schema, its 400 details, and the final word on every body this decoder does
not accept. This mirror only makes the common case cheap: decoding and
validating a well-formed beacon in msgspec takes about half of pydantic's time
(docs/performance.md), and every page view of every visitor pays it.

parse_beacon() tries this decoder first; anything it refuses goes to pydantic,
which either refuses it with the contract's error details or, where this
mirror is stricter than the model (a duplicate key, a float beyond any
attribution value a browser sends), accepts it, and its result is used. So the
mirror may be stricter than the model, never looser: tests/test_beacon_decoder.py
checks field by field that both declare the same names, defaults and bounds,
and differentially that every body the mirror accepts, pydantic accepts with
the same values.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct, field

from collector.beacon import SITE_NAME_PATTERN, parse_beacon
from collector.beacon import Beacon as BeaconModel


def _anchored(pattern: str) -> str:
    """A model pattern for Python's re: its `$` also matches before a final
    newline, pydantic's (Rust) `$` does not; `\\Z` is the end in both senses."""
    assert pattern.endswith("$")
    return pattern[:-1] + r"\Z"


# Bounds the model does not set, so that nothing this decoder accepts is an
# infinity pydantic would refuse (a JSON number like 1e400).
_FINITE = Meta(ge=-1e300, le=1e300)


def _text(max_length: int, min_length: int = 0) -> object:
    # The model's "no NUL" pattern is checked once on the whole body (decode()):
    # a regex per string cost more than the rest of the string checks.
    return Annotated[str, Meta(min_length=min_length, max_length=max_length)]


_Identifier = Annotated[str, Meta(pattern=_anchored(r"^[A-Za-z0-9_-]{8,64}$"))]
_Milliseconds = Annotated[float, Meta(ge=0, le=86_400_000)]


class Metric(Struct, frozen=True, omit_defaults=True):
    name: Annotated[str, Meta(pattern=_anchored(r"^[A-Z][A-Za-z0-9_]{1,31}$"))]
    value: Annotated[float, Meta(ge=0, le=1e9)]
    id: _text(128) | None = None  # type: ignore[valid-type]
    delta: Annotated[float, Meta(ge=-1e9, le=1e9)] | None = None
    rating: Literal["good", "needs-improvement", "poor"] | None = None
    navigationType: (  # noqa: N815 - web-vitals' spelling
        Literal["navigate", "reload", "back-forward", "back-forward-cache", "prerender", "restore"]
        | None
    ) = None
    attribution: (
        Annotated[
            dict[_text(32, 1), _text(512) | Annotated[float, _FINITE] | bool | None],  # type: ignore[valid-type]
            Meta(max_length=16),
        ]
        | None
    ) = None


class Event(Struct, frozen=True, omit_defaults=True):
    name: _text(64, 1)  # type: ignore[valid-type]
    value: Annotated[float, Meta(ge=0, le=1e12)] | None = None
    currency: Annotated[str, Meta(pattern=_anchored(r"^[A-Z]{3}$"))] | None = None


class Device(Struct, frozen=True, omit_defaults=True):
    vw: Annotated[int, Meta(ge=0, le=100_000)] | None = None
    vh: Annotated[int, Meta(ge=0, le=100_000)] | None = None
    dpr: Annotated[float, Meta(ge=0, le=100)] | None = None
    mem: Annotated[float, Meta(ge=0, le=4096)] | None = None
    cpus: Annotated[int, Meta(ge=0, le=4096)] | None = None
    ect: Literal["slow-2g", "2g", "3g", "4g"] | None = None
    rtt: _Milliseconds | None = None
    downlink: Annotated[float, Meta(ge=0, le=100_000)] | None = None
    save_data: bool | None = None


class Navigation(Struct, frozen=True, omit_defaults=True):
    type: Literal["navigate", "reload", "back_forward", "prerender", "back-forward-cache"] | None = None
    dns: _Milliseconds | None = None
    connect: _Milliseconds | None = None
    tls: _Milliseconds | None = None
    ttfb: _Milliseconds | None = None
    dom_interactive: _Milliseconds | None = None
    dcl: _Milliseconds | None = None
    load: _Milliseconds | None = None
    transfer_size: Annotated[int, Meta(ge=0, le=10**12)] | None = None
    protocol: _text(16) | None = None  # type: ignore[valid-type]


class Beacon(Struct, frozen=True, omit_defaults=True):
    v: Literal[1]
    site: Annotated[str, Meta(pattern=_anchored(SITE_NAME_PATTERN))]
    pv: _Identifier
    seq: Annotated[int, Meta(ge=0, le=10_000)]
    url: Annotated[
        str,
        Meta(max_length=2048,
             pattern=_anchored(r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00\s/?#]+[^\x00]*$")),
    ]
    consent: Literal["performance", "marketing"] = "marketing"
    t0: Annotated[float, Meta(ge=0, le=1e14)] | None = None
    sid: _Identifier | None = None
    ref: _text(2048) | None = None  # type: ignore[valid-type]
    release: _text(64) | None = None  # type: ignore[valid-type]
    dims: Annotated[
        dict[Annotated[str, Meta(pattern=_anchored(r"^[a-z0-9_]{1,32}$"))], _text(128)],  # type: ignore[valid-type]
        Meta(max_length=20),
    ] = field(default_factory=dict)
    device: Device | None = None
    nav: Navigation | None = None
    metrics: Annotated[list[Metric], Meta(max_length=50)] = field(default_factory=list)
    events: Annotated[list[Event], Meta(max_length=20)] = field(default_factory=list)


_DECODER = msgspec.json.Decoder(Beacon)


def decode(body: bytes) -> Beacon | None:
    """The beacon, or None when this decoder does not accept the body."""
    # JSON can only put a NUL in a string as the escape \u0000 (a raw control
    # character is invalid JSON): without it no string holds one, as the
    # model's patterns require; with it, the model decides.
    if b"\\u0000" in body:
        return None
    try:
        return _DECODER.decode(body)
    except Exception:  # noqa: BLE001 - invalid UTF-8 raises UnicodeDecodeError, for one;
        # whatever the mirror cannot read, the model reads and judges.
        return None


def parse(body: bytes) -> Beacon | BeaconModel:
    """The beacon of a raw body: this mirror when it accepts it, else the pydantic
    model's verdict (a BeaconError with the contract's details, or the model)."""
    beacon = decode(body)
    if beacon is not None:
        return beacon
    return parse_beacon(body)

