"""The OpenAPI schema documents every read endpoint: its parameters and the shape of its answer."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

RANGE = {"start", "end", "tenant"}
ENDPOINTS: dict[str, tuple[set[str], set[str]]] = {
    # path: (query and path parameters, top-level response properties)
    "/api/v1/services": (RANGE, {"services"}),
    "/api/v1/services/{service}/operations": (RANGE | {"service"}, {"service", "operations"}),
    "/api/v1/traces": (
        RANGE | {"service", "operation", "min_duration", "max_duration", "status", "limit", "attr.<key>"},
        {"traces"},
    ),
    "/api/v1/traces/{trace_id}": ({"trace_id", "tenant"}, {"traceId", "spans"}),
    "/api/v1/logs": (
        RANGE | {"service", "severity", "text", "trace_id", "limit", "cursor", "attr.<key>"},
        {"records", "next_cursor"},
    ),
    "/api/v1/metrics": (RANGE | {"name", "service", "limit"}, {"points"}),
    "/api/v1/metrics/names": (RANGE, {"metrics"}),
    "/api/v1/metrics/labels": (RANGE | {"name"}, {"labels"}),
    "/api/v1/metrics/labels/{label}/values": (RANGE | {"name", "label"}, {"label", "values"}),
    "/api/v1/errors": (RANGE | {"service", "limit"}, {"errors"}),
    "/api/v1/topology": (RANGE, {"nodes", "edges"}),
}


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return dict(response.json())


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_every_read_endpoint_is_documented(schema: dict[str, Any], path: str) -> None:
    parameters, properties = ENDPOINTS[path]
    operation = schema["paths"][path]["get"]
    assert operation["summary"]
    documented = {p["name"] for p in operation["parameters"]}
    assert parameters <= documented, f"{path}: missing {parameters - documented}"
    assert all(p.get("description") for p in operation["parameters"] if p["name"] in parameters - {"tenant"})
    body = resolve(schema, operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(body["properties"]) == properties
    for status in ("400", "401", "403"):
        error = operation["responses"][status]["content"]["application/json"]["schema"]
        assert set(resolve(schema, error)["properties"]) == {"error"}


def test_response_items_are_described(schema: dict[str, Any]) -> None:
    services = resolve(
        schema,
        schema["paths"]["/api/v1/services"]["get"]["responses"]["200"]["content"]["application/json"][
            "schema"
        ],
    )
    red = resolve(schema, services["properties"]["services"]["items"])
    assert {"service", "requests", "request_rate", "errors", "error_rate", "duration_ns"} <= set(
        red["properties"]
    )
    traces = resolve(
        schema,
        schema["paths"]["/api/v1/traces"]["get"]["responses"]["200"]["content"]["application/json"]["schema"],
    )
    summary = resolve(schema, traces["properties"]["traces"]["items"])
    assert set(summary["properties"]) == {
        "trace_id",
        "root_service",
        "root_operation",
        "start_time_unix_nano",
        "duration_ns",
        "span_count",
        "error_count",
        "services",
    }


def test_operation_ids_are_unique(schema: dict[str, Any]) -> None:
    ids = [
        op["operationId"] for item in schema["paths"].values() for op in item.values() if "operationId" in op
    ]
    assert len(ids) == len(set(ids))
    assert not any(i[-1].isdigit() for i in ids), "a collision was resolved with a number suffix"


def test_the_browsable_documentation_page() -> None:
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content.lower()
