"""GraphQL at /graphql/ on the same data and reads as REST: answers, refusals, limits, introspection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from ollystack.clickhouse import Signal
from tenants import logic
from tests.api.test_rest_reads import (
    BASE,
    MS,
    NS,
    RANGE,
    RANGE_SECONDS,
    T_FAILED,
    T_OK,
    cache_count,
    rfc3339,
    shop_logs,
    shop_metrics,
    shop_traces,
)

pytestmark = pytest.mark.django_db

START, END = RANGE["start"], RANGE["end"]
WINDOW = f'start: {START}, end: "{END}"'  # Unix seconds as a number and as a string


@pytest.fixture
def client(insert_requests: Callable[..., int]) -> APIClient:
    created = logic.create_tenant("graph-shop")
    insert_requests(Signal.TRACES, (created.tenant_id, shop_traces()))
    insert_requests(Signal.LOGS, (created.tenant_id, shop_logs()))
    insert_requests(Signal.METRICS, (created.tenant_id, shop_metrics()))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {logic.issue_api_key(created.tenant_id, 'tests').raw}")
    return api


def post(client: APIClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = client.post(
        "/graphql/",
        json.dumps({"query": query, "variables": variables or {}}),
        content_type="application/json",
    )
    return response


def data(client: APIClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = post(client, query, variables)
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_services_and_operations_match_rest(client: APIClient) -> None:
    got = data(
        client,
        f"{{ services({WINDOW}) {{ service requests requestRate errors errorRate"
        " durationNs { mean p50 p99 } } }",
    )
    rest = client.get("/api/v1/services", RANGE).json()["services"]
    assert [s["service"] for s in got["services"]] == ["checkout", "frontend"]
    for mine, theirs in zip(got["services"], rest, strict=True):
        assert mine["requests"] == theirs["requests"]
        assert mine["requestRate"] == pytest.approx(theirs["requests"] / RANGE_SECONDS)
        assert mine["errorRate"] == theirs["error_rate"]
        assert mine["durationNs"] == {k: theirs["duration_ns"][k] for k in ("mean", "p50", "p99")}
    ops = data(client, f'{{ operations(service: "frontend", {WINDOW}) {{ operation requests errors }} }}')
    assert ops["operations"] == [
        {"operation": "GET /checkout", "requests": 2.0, "errors": 0.0},
        {"operation": "POST", "requests": 2.0, "errors": 1.0},
    ]


def test_trace_search_and_trace(client: APIClient) -> None:
    query = """
      query Find($start: Time, $end: Time, $attrs: [AttributeFilter!]) {
        traceSearch(start: $start, end: $end, service: "checkout", attributes: $attrs, minDuration: "30ms") {
          traceId rootService rootOperation startTimeUnixNano durationNs spanCount errorCount services
        }
      }"""
    variables = {
        "start": rfc3339(BASE - 60 * NS),
        "end": int(END),
        "attrs": [{"key": "http.route", "value": "/api/checkout"}],
    }
    found = data(client, query, variables)["traceSearch"]
    assert found == [
        {
            "traceId": T_FAILED,
            "rootService": "frontend",
            "rootOperation": "GET /checkout",
            "startTimeUnixNano": str(BASE + 60 * NS),
            "durationNs": 60 * MS,
            "spanCount": 3,
            "errorCount": 2,
            "services": ["checkout", "frontend"],
        },
        {
            "traceId": T_OK,
            "rootService": "frontend",
            "rootOperation": "GET /checkout",
            "startTimeUnixNano": str(BASE),
            "durationNs": 120 * MS,
            "spanCount": 3,
            "errorCount": 0,
            "services": ["checkout", "frontend"],
        },
    ]
    errors_only = data(client, f'{{ traceSearch({WINDOW}, status: "error") {{ traceId }} }}')["traceSearch"]
    assert errors_only == [{"traceId": T_FAILED}]
    trace = data(
        client, f'{{ trace(traceId: "{T_OK.upper()}") {{ traceId spans {{ name serviceName status }} }} }}'
    )
    assert trace["trace"] == {
        "traceId": T_OK,
        "spans": [
            {"name": "GET /checkout", "serviceName": "frontend", "status": {"code": 0, "message": ""}},
            {"name": "POST", "serviceName": "frontend", "status": {"code": 0, "message": ""}},
            {"name": "POST /api/checkout", "serviceName": "checkout", "status": {"code": 0, "message": ""}},
        ],
    }
    assert data(client, '{ trace(traceId: "' + "0" * 32 + '") { traceId } }') == {"trace": None}


def test_logs_with_cursor(client: APIClient) -> None:
    query = (
        "query($cursor: String) { logs(%s, limit: 1, cursor: $cursor) "
        "{ records { body severityText traceId } nextCursor } }"
    )
    first = data(client, query % WINDOW)["logs"]
    assert first["records"] == [
        {"body": {"stringValue": "card 4242 declined"}, "severityText": "ERROR", "traceId": T_FAILED}
    ]
    second = data(client, query % WINDOW, {"cursor": first["nextCursor"]})["logs"]
    assert [r["body"]["stringValue"] for r in second["records"]] == ["order 1 placed"]
    assert second["nextCursor"] is None
    warn = data(client, f'{{ logs({WINDOW}, severity: "error") {{ records {{ severityText }} }} }}')["logs"]
    assert warn["records"] == [{"severityText": "ERROR"}]


def test_metric_names_errors_topology(client: APIClient) -> None:
    got = data(
        client,
        f"""{{
          metricNames({WINDOW}) {{ name type points services }}
          errors({WINDOW}, service: "checkout") {{ service exceptionType count exampleTraceId }}
          topology({WINDOW}) {{ nodes {{ service instrumented }} edges {{ caller callee calls errors }} }}
        }}""",
    )
    assert got["metricNames"] == [
        {"name": "queue.depth", "type": "gauge", "points": 3, "services": ["checkout"]}
    ]
    assert got["errors"] == [
        {"service": "checkout", "exceptionType": "PaymentDeclined", "count": 1.0, "exampleTraceId": T_FAILED}
    ]
    assert got["topology"] == {
        "nodes": [
            {"service": "checkout", "instrumented": True},
            {"service": "frontend", "instrumented": True},
        ],
        "edges": [{"caller": "frontend", "callee": "checkout", "calls": 2.0, "errors": 1.0}],
    }


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('{ services(start: "soon") { service } }', "start: 'soon' is not a time; use RFC 3339"),
        ("{ services(end: 1700000000000) { service } }", "end: '1700000000000' looks like milliseconds"),
        ('{ traceSearch(minDuration: "100") { traceId } }', "min_duration: '100' is not a duration"),
        ('{ traceSearch(status: "failed") { traceId } }', 'status: "failed" is not a valid choice.'),
        ("{ traceSearch(limit: 0) { traceId } }", "limit: Ensure this value is greater than or equal to 1."),
        ('{ trace(traceId: "xyz") { traceId } }', "traceId: 'xyz' is not a trace id"),
        ('{ logs(severity: "LOUD") { nextCursor } }', "severity: 'LOUD' is not a severity"),
        ('{ logs(cursor: "nope") { nextCursor } }', "cursor 'nope' is not one this server returned"),
        ("{ errors(limit: 5000) { service } }", "limit: Ensure this value is less than or equal to 1000."),
        (
            '{ traceSearch(attributes: [{key: "a", value: "1"}, {key: "a", value: "2"}]) { traceId } }',
            "attributes: a key is given more than once",
        ),
    ],
)
def test_bad_arguments_name_the_parameter(client: APIClient, query: str, message: str) -> None:
    response = post(client, query)
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["message"].startswith(message), error
    assert error["path"]


def test_a_schema_error_is_a_400(client: APIClient) -> None:
    response = post(client, "{ services { nope } }")
    assert response.status_code == 400
    assert "Cannot query field 'nope' on type 'ServiceRed'." in response.json()["errors"][0]["message"]


@override_settings(OLLYSTACK_GRAPHQL_MAX_DEPTH=3)
def test_too_deep_is_refused_before_running(client: APIClient) -> None:
    hits = cache_count("topology.edges", "miss")
    response = post(client, "{ topology { edges { durationNs { p50 } } } }")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["message"] == (
        "operation 'anonymous' is 4 fields deep; the limit is 3: ask for fewer nested fields"
    )
    assert cache_count("topology.edges", "miss") == hits  # nothing ran
    # through a fragment, too
    response = post(
        client, "query Map { topology { ...E } } fragment E on Topology { edges { durationNs { p50 } } }"
    )
    assert response.json()["errors"][0]["message"].startswith("operation 'Map' is 4 fields deep")
    shallow = data(client, f"{{ topology({WINDOW}) {{ edges {{ caller }} }} }}")
    assert shallow["topology"]["edges"] == [{"caller": "frontend"}]


def test_too_costly_is_refused(client: APIClient) -> None:
    aliases = " ".join(f"s{n}: services {{ service }}" for n in range(21))  # 21 x (1 + 10 + 1) = 252
    response = post(client, f"query Many {{ {aliases} }}")
    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    assert message.startswith(
        "operation 'Many' costs 252 (each field 1, each top-level read 10 more); the limit is 250"
    )
    fewer = " ".join(f"s{n}: services {{ service }}" for n in range(20))
    assert len(data(client, f"{{ {fewer} }}")) == 20


def test_cyclic_fragments_are_refused_not_crashing(client: APIClient) -> None:
    response = post(
        client, "{ topology { ...A } } fragment A on Topology { ...B } fragment B on Topology { ...A }"
    )
    assert response.status_code == 400
    assert any("Cannot spread fragment 'A' within itself" in e["message"] for e in response.json()["errors"])


def test_introspection_can_be_turned_off(client: APIClient) -> None:
    assert data(client, "{ __schema { queryType { name } } }") == {
        "__schema": {"queryType": {"name": "Query"}}
    }
    with override_settings(OLLYSTACK_GRAPHQL_INTROSPECTION=False):
        for query in ("{ __schema { queryType { name } } }", '{ __type(name: "Query") { name } }'):
            response = post(client, query)
            assert response.status_code == 400
            assert "introspection (__" in response.json()["errors"][0]["message"]
            assert "is turned off on this server" in response.json()["errors"][0]["message"]
        assert data(client, "{ services { __typename } }") == {"services": []}  # not a range with data
        page = client.get("/graphql/", HTTP_ACCEPT="text/html")
        assert page.status_code == 400  # no GraphiQL page
    page = client.get("/graphql/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert b"graphiql" in page.content.lower()


def test_production_settings_turn_introspection_off() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLLYSTACK_GRAPHQL")}
    env["OLLYSTACK_SECRET_KEY"] = "x" * 50
    code = "import ollystack.settings.production as p; print(p.OLLYSTACK_GRAPHQL_INTROSPECTION)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_graphql_needs_credentials_and_sees_only_its_tenant(client: APIClient) -> None:
    anonymous = APIClient().post("/graphql/", {"query": "{ services { service } }"}, format="json")
    assert anonymous.status_code == 401
    assert "Authorization: Bearer" in anonymous.json()["error"]
    other = logic.create_tenant("graph-other")
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {logic.issue_api_key(other.tenant_id, 'tests').raw}")
    assert data(stranger, f"{{ services({WINDOW}) {{ service }} }}") == {"services": []}
    assert data(stranger, f'{{ trace(traceId: "{T_OK}") {{ traceId }} }}') == {"trace": None}
    assert len(data(client, f"{{ services({WINDOW}) {{ service }} }}")["services"]) == 2


def test_graphql_and_rest_share_the_cache(client: APIClient) -> None:
    hits = cache_count("errors.list", "hit")
    client.get("/api/v1/errors", {**RANGE, "limit": "100"})
    data(client, f"{{ errors({WINDOW}) {{ service }} }}")
    assert cache_count("errors.list", "hit") == hits + 1
