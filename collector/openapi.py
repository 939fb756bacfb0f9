"""GET /openapi.json: the collector's routes as an OpenAPI 3.1 document.

The beacon's schema comes from the pydantic model (collector/beacon.py), like
/beacon.schema.json, so the two cannot drift; the routes and their answers are
written here, from docs/beacon-format.md, "Routes". tests/test_fuzz.py runs
schemathesis against this document and a live collector.
"""

from __future__ import annotations

import functools
from typing import Any

from collector import __version__ as _version
from collector.beacon import Beacon

_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON_ERROR = {"application/json": {"schema": _ERROR}}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before sending again.",
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": _JSON_ERROR, **extra}


_BEACON_ANSWERS = {
    "204": {"description": "Accepted (or, from a bot, crawler, headless browser or a client "
                           "without User-Agent, answered alike but not stored)."},
    "400": _error("Malformed JSON, or a beacon that fails validation (detail names the "
                  "fields), or a body that never finished."),
    "403": _error("Unknown site, or an origin the site does not allow."),
    "408": _error("The body took longer than BINOME_BODY_TIMEOUT_SECONDS to arrive."),
    "413": _error("Body over BINOME_MAX_BODY_BYTES (64 KiB by default), refused unread."),
    "415": _error("Neither text/plain nor application/json."),
    "429": _error("Rate-limited client, or too many beacons for one page view or session.",
                  headers=_RETRY_AFTER),
    "503": _error("Overloaded: the write queue or the connection limit is full.",
                  headers=_RETRY_AFTER),
}


def _get(summary: str, media_type: str, schema: dict[str, Any] | None = None,
         **answers: Any) -> dict[str, Any]:
    content = {media_type: {"schema": schema or {"type": "string"}}}
    return {"get": {"summary": summary, "responses": {
        "200": {"description": "OK", "content": content}, **answers}}}


@functools.cache
def openapi_document() -> dict[str, Any]:
    beacon = Beacon.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = beacon.pop("$defs", {})
    schemas["Beacon"] = beacon
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {}},
    }
    beacon_ref = {"$ref": "#/components/schemas/Beacon"}
    status = {"type": "object", "properties": {"status": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Binome collector",
            "version": _version,
            "description": "Real-user monitoring beacons: docs/beacon-format.md in the "
                           "repository.",
        },
        "paths": {
            "/beacon": {
                "post": {
                    "summary": "Send one beacon.",
                    "description": "The body is one beacon as JSON. Browsers send it as "
                                   "text/plain (navigator.sendBeacon, no CORS preflight).",
                    # The same JSON either way: text/plain is only the label that
                    # spares browsers a CORS preflight.
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": beacon_ref},
                        "text/plain": {"schema": beacon_ref},
                    }},
                    "responses": _BEACON_ANSWERS,
                },
                "options": {
                    "summary": "CORS preflight for application/json senders.",
                    "responses": {"204": {"description": "Allowed methods and headers."}},
                },
            },
            "/binome.js": {
                **_get("The snippet, minified.", "text/javascript",
                       **{"304": {"description": "Not modified (If-None-Match)."},
                          "404": _error("The snippet is not built.")}),
            },
            "/beacon.schema.json": _get("The beacon's JSON Schema.", "application/schema+json",
                                        {"type": "object"}),
            "/openapi.json": _get("This document.", "application/json", {"type": "object"}),
            "/healthz": _get("200 while the process lives.", "application/json", status),
            "/readyz": _get("200 when beacons can be accepted and persisted.",
                            "application/json", status,
                            **{"503": {"description": "Not ready, with the reason.",
                                       "content": {"application/json": {"schema": status}}}}),
            "/metrics": _get("Prometheus metrics.", "text/plain"),
            "/dashboard": {"get": {
                "summary": "The shared scorecard page.",
                "parameters": [{"name": "token", "in": "query", "required": False,
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The page.",
                                      "content": {"text/html": {"schema": {"type": "string"}}}},
                              "303": {"description": "?token= traded for a cookie."},
                              "401": _error("Token required."),
                              "403": _error("No token set and not a loopback client.")},
            }},
            "/dashboard/sign-in": {"post": {
                "summary": "The sign-in form: its token traded for a cookie.",
                "responses": {"303": {"description": "Signed in: back to the page."},
                              "401": _error("Wrong token."),
                              "403": _error("No token set.")},
            }},
            "/dashboard/data": {"get": {
                "summary": "The scorecard page's figures, read from the rum views.",
                "parameters": [
                    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                    for name in ("site", "from", "to", "device_class", "country")
                ],
                "responses": {"200": {"description": "Figures for the period and filters.",
                                      "content": {"application/json": {"schema": {
                                          "type": "object"}}}},
                              "400": _error("Bad filters."),
                              "401": _error("Token required."),
                              "403": _error("No token set and not a loopback client."),
                              "503": _error("The figures took too long, or too many at once.")},
            }},
            "/dashboard/proof": {"get": {
                "summary": "A site's differences and what speed is worth, as computed so far.",
                "parameters": [{"name": "site", "in": "query", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "proof.pending true while they are"
                                      " computed; comparisons and speed_worth null until then,"
                                      " or when they could not be.",
                                      "content": {"application/json": {"schema": {
                                          "type": "object"}}}},
                              "400": _error("No site, or not a site name."),
                              "401": _error("Token required."),
                              "403": _error("No token set and not a loopback client.")},
            }},
        },
        "components": {"schemas": schemas},
    }
