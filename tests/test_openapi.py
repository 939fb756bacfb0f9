"""GET /openapi.json (collector/openapi.py) documents every route the app serves."""

from __future__ import annotations

from starlette.routing import Route

from collector.app import create_app
from collector.beacon import json_schema
from collector.openapi import openapi_document
from collector.settings import Settings


def test_every_route_is_documented() -> None:
    app = create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/none"))
    served = {(route.path, method.lower()) for route in app.routes if isinstance(route, Route)
              for method in route.methods or () if method != "HEAD"}
    # `/` is the demo page: not part of the collector's interface.
    served -= {("/", "get")}
    paths = openapi_document()["paths"]
    documented = {(path, method) for path, item in paths.items() for method in item}
    assert served == documented


def test_the_beacon_is_the_models_schema() -> None:
    document = openapi_document()
    beacon = document["components"]["schemas"]["Beacon"]
    schema = json_schema()
    assert beacon["properties"].keys() == schema["properties"].keys()
    assert beacon["required"] == schema["required"]
    body = document["paths"]["/beacon"]["post"]["requestBody"]["content"]
    assert set(body) == {"text/plain", "application/json"}
    assert set(document["paths"]["/beacon"]["post"]["responses"]) == {
        "204", "400", "403", "408", "413", "415", "429", "503"}
