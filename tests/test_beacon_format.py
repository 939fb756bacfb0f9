"""docs/beacon-format.md and the code, kept in step.

The spec's tables name things in backticks in their first column: beacon
fields (`device.vw`, `metrics[].name`) in "The beacon", routes (`GET /healthz`)
in "Routes", view columns under a `### rum.view` heading in "Views". Each check
compares those names with what the code has, both ways, and each beacon row
with the bounds the JSON Schema gives that field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import asyncpg
from starlette.routing import Mount, Route

from collector import PROJECT_ROOT
from collector.app import create_app
from collector.beacon import json_schema
from collector.settings import Settings

SPEC = PROJECT_ROOT / "docs" / "beacon-format.md"
# The spec's word for a string without NUL (its "The beacon" says so).
NO_NUL = r"^[^\x00]*$"
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
          "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e\d+)?")


def section(title: str) -> str:
    """The text of one `## title` section of the spec."""
    parts = re.split(r"^## (.+)$", SPEC.read_text(), flags=re.MULTILINE)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    assert title in sections, f"docs/beacon-format.md has no section {title!r}"
    return sections[title]


def table_rows(text: str, first_header: str) -> Iterator[tuple[str, list[str]]]:
    """(backticked name in the first cell, the row's cells) of each table whose
    first header is `first_header`."""
    in_table = False
    for line in text.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not in_table:
            in_table = cells[0] == first_header
            continue
        name = re.fullmatch(r"`([^`]+)`", cells[0])
        if name:
            yield name.group(1), cells


def documented(text: str, first_header: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, cells in table_rows(text, first_header):
        assert name not in found, f"{name} is documented twice"
        found[name] = cells
    return found


# --- The beacon --------------------------------------------------------------------


def beacon_fields() -> dict[str, tuple[dict[str, Any], bool]]:
    """Every field of the beacon, nested models included, by the spec's name for
    it (`nav.dns`, `events[].value`): (its JSON Schema, whether it is required)."""
    schema = json_schema()
    fields: dict[str, tuple[dict[str, Any], bool]] = {}

    def walk(model: dict[str, Any], prefix: str) -> None:
        required = set(model.get("required", ()))
        for name, prop in model["properties"].items():
            fields[prefix + name] = (prop, name in required)
            for branch in (prop, *prop.get("anyOf", ())):
                if "$ref" in branch:
                    walk(schema["$defs"][branch["$ref"].rsplit("/", 1)[1]], prefix + name + ".")
                elif "$ref" in branch.get("items", {}):
                    item = branch["items"]["$ref"].rsplit("/", 1)[1]
                    walk(schema["$defs"][item], prefix + name + "[].")

    walk(schema, "")
    return fields


def constraints(prop: Any, found: dict[str, set[Any]]) -> dict[str, set[Any]]:
    """The bounds, patterns and allowed values anywhere in a field's schema
    (its nested models excepted: they have rows of their own)."""
    if isinstance(prop, list):
        for item in prop:
            constraints(item, found)
    if not isinstance(prop, dict) or "$ref" in prop:
        return found
    for key, value in prop.items():
        if key in BOUNDS and not (key == "minLength" and value == 0):
            found["numbers"].add(value)
        elif key == "const":
            found["numbers" if isinstance(value, int | float) else "values"].add(value)
        elif key == "enum":
            found["values"].update(value)
        elif key == "pattern":
            found["patterns"].add(value)
        elif key == "patternProperties":
            found["patterns"].update(value)
            constraints(list(value.values()), found)
        elif key in ("anyOf", "items", "propertyNames", "additionalProperties"):
            constraints(value, found)
    return found


def own_types(prop: dict[str, Any]) -> set[str]:
    return {branch["type"] for branch in (prop, *prop.get("anyOf", ()))
            if branch.get("type", "null") != "null"}


def test_every_field_of_the_beacon_is_documented_with_its_bounds() -> None:
    fields = beacon_fields()
    spec_rows = documented(section("The beacon"), "field")
    assert sorted(set(fields) - set(spec_rows)) == [], "fields missing from the spec"
    assert sorted(set(spec_rows) - set(fields)) == [], "fields the model does not have"

    for name, (prop, required) in fields.items():
        type_cell, required_cell = spec_rows[name][1:3]
        row = " | ".join(spec_rows[name])
        for json_type in own_types(prop):
            words = ("string", "text") if json_type == "string" else (json_type,)
            assert any(word in type_cell for word in words), f"{name}: type {json_type}"
        assert required_cell == ("yes" if required else "no"), f"{name}: required {required}"
        found = constraints(prop, {"numbers": set(), "values": set(), "patterns": set()})
        numbers = {float(token) for token in NUMBER.findall(row)}
        for number in found["numbers"]:
            assert float(number) in numbers, f"{name}: bound {number} not in its row"
        for value in found["values"]:
            assert f"`{value}`" in row, f"{name}: value {value!r} not in its row"
        for pattern in found["patterns"]:
            if pattern == NO_NUL:
                assert "text" in row, f"{name}: a string without NUL, 'text' in the spec"
            else:
                assert f"`{pattern}`" in row, f"{name}: pattern {pattern} not in its row"


# --- Routes ------------------------------------------------------------------------


def served_routes() -> set[str]:
    """`METHOD /path` of every route the collector answers, with `--demo` or
    not; HEAD goes without saying where GET is served (the spec says so once)."""
    settings = Settings(database_url="postgresql://unused/unused")
    routes = [*create_app(settings).routes, *create_app(settings, demo=True).routes]
    served = {"POST /beacon", "OPTIONS /beacon"}  # answered before the router
    for route in routes:
        if isinstance(route, Mount):
            served.add(f"GET {route.path}/{{path}}")
        else:
            assert isinstance(route, Route) and route.methods
            served.update(f"{method} {route.path}" for method in route.methods
                          if not (method == "HEAD" and "GET" in route.methods))
    return served


def test_every_route_is_documented() -> None:
    routes = set(documented(section("Routes"), "route"))
    served = served_routes()
    assert sorted(served - routes) == [], "routes missing from the spec"
    assert sorted(routes - served) == [], "routes the collector does not serve"


# --- Views -------------------------------------------------------------------------


def documented_views() -> dict[str, set[str]]:
    views: dict[str, set[str]] = {}
    for block in re.split(r"^### ", section("Views"), flags=re.MULTILINE)[1:]:
        heading, _, body = block.partition("\n")
        name = re.fullmatch(r"`rum\.(\w+)`", heading.strip())
        assert name, f"a view's heading is `rum.name`: {heading!r}"
        views[name.group(1)] = set(documented(body, "column"))
    return views


async def test_every_view_and_column_is_documented(conn: asyncpg.Connection) -> None:
    records = await conn.fetch(
        "SELECT c.relname AS view, a.attname AS col FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = 'rum' AND c.relkind IN ('v', 'm')")
    views: dict[str, set[str]] = {}
    for record in records:
        views.setdefault(record["view"], set()).add(record["col"])
    spec = documented_views()
    assert sorted(set(views) - set(spec)) == [], "views missing from the spec"
    assert sorted(set(spec) - set(views)) == [], "views the database does not have"
    for view, columns in views.items():
        assert sorted(columns - spec[view]) == [], f"rum.{view}: columns missing from the spec"
        assert sorted(spec[view] - columns) == [], f"rum.{view}: columns it does not have"
