"""The hot path's beacon decoder: msgspec Structs generated from collector/beacon.py.

The pydantic models stay the one definition of the beacon (its JSON Schema, its
400 details); at import, each model is translated field by field into a msgspec
Struct with the same names, defaults, bounds and patterns, which decodes and
validates a valid beacon in one cheaper pass (docs/performance.md, "Issue 19:
one beacon definition"). parse() tries it first; whatever it refuses goes to
pydantic, which refuses it with the details of a 400 or, where the Struct is
stricter (a NUL escape in a field the model ignores), accepts it, and the accepted
beacon is converted to the Struct: enrichment reads one type. The Struct may be
stricter than the model, never looser: tests/test_beacon_decoder.py compares
both JSON Schemas, field by field.
"""

from __future__ import annotations

import functools
import sys
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import msgspec
from msgspec import Meta
from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from collector import beacon as model
from collector.beacon import BeaconError, parse_beacon

# The model's "no NUL" pattern is checked once on the whole body (decode()): a
# regex per string costs more than the rest of the string checks.
_NO_NUL = r"^[^\x00]*$"
# A float the model leaves unbounded still has to be finite, as the model's
# allow_inf_nan=False requires (msgspec reads a JSON 1e400 as infinity).
FINITE = sys.float_info.max


def _anchored(pattern: str) -> str:
    """A model pattern for Python's re: its `$` also matches before a final newline,
    pydantic's (Rust) `$` does not; `\\Z` is the end in both senses."""
    assert pattern.startswith("^") and pattern.endswith("$"), pattern
    return pattern[:-1] + r"\Z"


def _meta(constraints: list[Any]) -> dict[str, Any]:
    """msgspec Meta arguments for pydantic's constraint objects."""
    meta: dict[str, Any] = {}
    for item in constraints:
        if isinstance(item, FieldInfo):
            meta.update(_meta(item.metadata))
        elif isinstance(item, StringConstraints):
            for name in ("min_length", "max_length"):
                if getattr(item, name) is not None:
                    meta[name] = getattr(item, name)
            if item.pattern is not None and item.pattern != _NO_NUL:
                meta["pattern"] = _anchored(str(item.pattern))
        elif isinstance(item, annotated_types.Ge):
            meta["ge"] = item.ge
        elif isinstance(item, annotated_types.Le):
            meta["le"] = item.le
        elif isinstance(item, annotated_types.MinLen):
            meta["min_length"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            meta["max_length"] = item.max_length
        else:
            raise TypeError(f"no msgspec equivalent for {item!r}")
    return meta


def _struct_type(annotation: Any, constraints: list[Any] = []) -> Any:  # noqa: B006 - read only
    """The msgspec type of a pydantic annotation and its constraints."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *more = get_args(annotation)
        return _struct_type(base, [*constraints, *more])
    meta = _meta(constraints)
    if origin in (Union, types.UnionType):
        assert not meta, annotation
        return Union[tuple(_struct_type(arg) for arg in get_args(annotation))]  # noqa: UP007
    if origin is list:
        (item,) = get_args(annotation)
        converted: Any = list[_struct_type(item)]  # type: ignore[misc]
    elif origin is dict:
        key, value = get_args(annotation)
        converted = dict[_struct_type(key), _struct_type(value)]  # type: ignore[misc]
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        assert not meta, annotation
        return _struct(annotation)
    elif annotation in (str, int, float, bool, type(None)) or origin is Literal:
        converted = annotation
        if annotation is float:
            meta.setdefault("ge", -FINITE)
            meta.setdefault("le", FINITE)
    else:
        raise TypeError(f"no msgspec equivalent for {annotation!r}")
    return Annotated[converted, Meta(**meta)] if meta else converted


@functools.cache
@typing.no_type_check
def _struct(model: type[BaseModel]) -> type[msgspec.Struct]:
    fields = []
    for name, info in model.model_fields.items():
        kind = _struct_type(info.annotation, list(info.metadata))
        if info.default_factory is not None:
            fields.append((name, kind, msgspec.field(default_factory=info.default_factory)))
        elif info.default is PydanticUndefined:
            fields.append((name, kind))
        else:
            fields.append((name, kind, info.default))
    return msgspec.defstruct(model.__name__, fields, kw_only=True, frozen=True,
                             omit_defaults=True, module=__name__)


Beacon = _struct(model.Beacon)
Metric = _struct(model.Metric)
Event = _struct(model.Event)
Device = _struct(model.Device)
Navigation = _struct(model.Navigation)
_DECODER = msgspec.json.Decoder(Beacon)


def decode(body: bytes) -> Any | None:
    """The beacon as a Struct, or None when the Struct does not accept the body."""
    # JSON can only put a NUL in a string as the escape \u0000 (a raw control
    # character is invalid JSON): without it no string holds one, as the
    # model's patterns require; with it, the model decides.
    if b"\\u0000" in body:
        return None
    try:
        return _DECODER.decode(body)
    except Exception:  # noqa: BLE001 - invalid UTF-8 raises UnicodeDecodeError, for one;
        # whatever the Struct cannot read, the model reads and judges.
        return None


def parse(body: bytes) -> Any:
    """The beacon of a raw body as a Struct; a BeaconError with the 400's details
    when the model refuses it."""
    beacon = decode(body)
    if beacon is not None:
        return beacon
    accepted = parse_beacon(body)  # the model's verdict, with its details
    try:
        return msgspec.convert(accepted.model_dump(), Beacon)
    except msgspec.ValidationError as exc:  # stricter than the model: refused all the same
        raise BeaconError("invalid_beacon", [{"field": "(body)", "message": str(exc)}]) from None
