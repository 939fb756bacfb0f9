"""The beacon, version 1 (docs/beacon-format.md, "The beacon"): the single source of truth.

Validation, the field list of a 400's detail and GET /beacon.schema.json all
come from these models. Strict mode: a string where a number belongs, a float
where an integer belongs, NaN/Infinity, negative durations and oversize strings
are all refused instead of coerced. Unknown fields are ignored, so older
collectors accept newer snippets.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

# PostgreSQL text cannot hold NUL; refusing it here turns a would-be write
# failure into a clear 400. (Lone surrogates never get this far: the JSON
# parser already refuses them as invalid Unicode.)
_NO_NUL = r"^[^\x00]*$"


def Text(max_length: int, min_length: int = 0) -> Any:  # noqa: N802 - reads as a type
    return Annotated[
        str, StringConstraints(min_length=min_length, max_length=max_length, pattern=_NO_NUL)
    ]


SITE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
SiteName = Annotated[str, StringConstraints(pattern=SITE_NAME_PATTERN)]
# An ISO 4217 code: a conversion's currency, and a site's (`binome site add --currency`).
CURRENCY_PATTERN = r"^[A-Z]{3}$"
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
DimKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]
NonNegative = Annotated[float, Field(ge=0)]
Milliseconds = Annotated[float, Field(ge=0, le=86_400_000)]  # a day is beyond any page view

# web-vitals' own names; the pattern leaves room for metrics added later.
CORE_METRICS = ("LCP", "INP", "CLS", "FCP", "TTFB")
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9_]{1,31}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore", frozen=True)


class Metric(_Strict):
    """One web-vitals report (the `Metric` object web-vitals hands its callback)."""

    name: MetricName
    value: Annotated[float, Field(ge=0, le=1e9)]
    id: Text(128) | None = None
    delta: Annotated[float, Field(ge=-1e9, le=1e9)] | None = None
    rating: Literal["good", "needs-improvement", "poor"] | None = None
    navigationType: (  # noqa: N815 - web-vitals' spelling
        Literal["navigate", "reload", "back-forward", "back-forward-cache", "prerender", "restore",
                "soft-navigation"]
        | None
    ) = None
    attribution: (
        Annotated[
            dict[Text(32, 1), Text(512) | float | bool | None],
            Field(max_length=16, json_schema_extra={"additionalProperties": False}),
        ]
        | None
    ) = None


class Event(_Strict):
    """A goal completion (conversion): `binome('conversion', name, value?, currency?)`."""

    name: Text(64, 1)
    value: Annotated[float, Field(ge=0, le=1e12)] | None = None
    currency: Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)] | None = None


class Device(_Strict):
    """What the browser says of the device and network (all optional hints)."""

    vw: Annotated[int, Field(ge=0, le=100_000)] | None = None
    vh: Annotated[int, Field(ge=0, le=100_000)] | None = None
    dpr: Annotated[float, Field(ge=0, le=100)] | None = None
    mem: Annotated[float, Field(ge=0, le=4096)] | None = None
    cpus: Annotated[int, Field(ge=0, le=4096)] | None = None
    ect: Literal["slow-2g", "2g", "3g", "4g"] | None = None
    rtt: Milliseconds | None = None
    downlink: Annotated[float, Field(ge=0, le=100_000)] | None = None
    save_data: bool | None = None


class Navigation(_Strict):
    """Navigation Timing breakdown, in milliseconds (transfer_size in bytes)."""

    # soft-navigation: a route change of a single-page application (issue 22).
    type: Literal[
        "navigate", "reload", "back_forward", "prerender", "back-forward-cache", "soft-navigation"
    ] | None = None
    dns: Milliseconds | None = None
    connect: Milliseconds | None = None
    tls: Milliseconds | None = None
    ttfb: Milliseconds | None = None
    dom_interactive: Milliseconds | None = None
    dcl: Milliseconds | None = None
    load: Milliseconds | None = None
    transfer_size: Annotated[int, Field(ge=0, le=10**12)] | None = None
    protocol: Text(16) | None = None


LossCount = Annotated[int, Field(ge=0, le=10_000)]


class Losses(_Strict):
    """Beacons the snippet failed to send since its previous beacon, by reason
    (issue 22): the browser refused them (`refused`: sendBeacon and the fetch
    fallback both failed), or they were over the keepalive budget even without
    attribution and most events (`oversize`)."""

    refused: LossCount | None = None
    oversize: LossCount | None = None


class Beacon(_Strict):
    """One send of the snippet. A page view sends seq 0, 1, 2 ... under one `pv`."""

    v: Literal[1]
    # Private by default (contract section 5, issue 24): a sender that forgets
    # `consent` stores no marketing data; one that has consent says so.
    consent: Literal["performance", "marketing"] = "performance"
    site: SiteName
    pv: Identifier
    seq: Annotated[int, Field(ge=0, le=10_000)]
    t0: Annotated[float, Field(ge=0, le=1e14)] | None = None
    sid: Identifier | None = None
    # Spelled without (?i): JSON Schema patterns are ECMA-262, which has no inline flags.
    url: Annotated[
        str,
        StringConstraints(
            max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00\s/?#]+[^\x00]*$"
        ),
    ]
    ref: Text(2048) | None = None
    release: Text(64) | None = None
    dims: Annotated[
        dict[DimKey, Text(128)],
        # The schema says what the model does: a key outside the pattern is refused.
        Field(max_length=20, json_schema_extra={"additionalProperties": False}),
    ] = Field(default_factory=dict)
    device: Device | None = None
    nav: Navigation | None = None
    metrics: Annotated[list[Metric], Field(max_length=50)] = Field(default_factory=list)
    events: Annotated[list[Event], Field(max_length=20)] = Field(default_factory=list)
    lost: Losses | None = None


class BeaconError(ValueError):
    """A body that is not a valid beacon: `code` is the error code of the 400."""

    def __init__(self, code: str, detail: list[dict[str, Any]]) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def parse_beacon(body: bytes) -> Beacon:
    """Parse and validate a raw body in one pass (no intermediate dict)."""
    try:
        return Beacon.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        malformed = [e for e in errors if e["type"] == "json_invalid"]
        if malformed:
            raise BeaconError(
                "malformed_json", [{"field": "(body)", "message": malformed[0]["msg"]}]
            ) from None
        raise BeaconError(
            "invalid_beacon",
            [{"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
             for e in errors[:20]],
        ) from None


def json_schema() -> dict[str, Any]:
    schema = Beacon.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "/beacon.schema.json"
    return schema
