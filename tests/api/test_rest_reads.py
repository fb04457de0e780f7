"""The REST read endpoints on known data in the embedded engine: exact figures, both time formats, the
query cache, and 400s that name the parameter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from rest_framework.test import APIClient

from ingest import metrics as self_metrics
from ollystack.clickhouse import Signal
from ollystack.clickhouse.views import DIGEST_RELATIVE_ERROR
from tenants import logic

pytestmark = pytest.mark.django_db

NS = 1_000_000_000
MS = 1_000_000
BASE = 1_700_000_000 * NS  # 2023-11-14T22:13:20Z
T_OK = "1111111111111111111111111111aa01"
T_FAILED = "1111111111111111111111111111aa02"
RANGE = {"start": str(BASE // NS - 60), "end": str(BASE // NS + 600)}  # 660 s
RANGE_SECONDS = 660


def shop_traces() -> ExportTraceServiceRequest:
    """Two checkouts: frontend (server span, client span) → checkout (server span). The second, a minute
    later, fails in checkout with a PaymentDeclined exception, and the frontend's call with it."""
    req = ExportTraceServiceRequest()
    scopes = {}
    for service in ("frontend", "checkout"):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        scopes[service] = rs.scope_spans.add()
    for trace, offset, (root_ms, call_ms, server_ms), failed in (
        (T_OK, 0, ((0, 120), (10, 100), (20, 90)), False),
        (T_FAILED, 60_000, ((0, 60), (5, 55), (10, 50)), True),
    ):
        ids = [bytes.fromhex(trace[-4:] + f"{n:012x}") for n in (1, 2, 3)]
        spans = []
        for n, (service, parent, name, kind, (begin, finish)) in enumerate(
            [
                ("frontend", b"", "GET /checkout", Span.SPAN_KIND_SERVER, root_ms),
                ("frontend", ids[0], "POST", Span.SPAN_KIND_CLIENT, call_ms),
                ("checkout", ids[1], "POST /api/checkout", Span.SPAN_KIND_SERVER, server_ms),
            ]
        ):
            span = scopes[service].spans.add(
                trace_id=bytes.fromhex(trace),
                span_id=ids[n],
                parent_span_id=parent,
                name=name,
                kind=kind,
                start_time_unix_nano=BASE + (offset + begin) * MS,
                end_time_unix_nano=BASE + (offset + finish) * MS,
            )
            spans.append(span)
        _, call, server = spans
        call.attributes.add(key="peer.service").value.string_value = "checkout"
        server.attributes.add(key="http.route").value.string_value = "/api/checkout"
        server.attributes.add(key="http.response.status_code").value.int_value = 500 if failed else 200
        if failed:
            call.status.code = Status.STATUS_CODE_ERROR
            call.status.message = "HTTP 500"
            server.status.code = Status.STATUS_CODE_ERROR
            event = server.events.add(name="exception", time_unix_nano=BASE + (offset + 40) * MS)
            event.attributes.add(key="exception.type").value.string_value = "PaymentDeclined"
            event.attributes.add(key="exception.message").value.string_value = "card 4242 declined"
    return req


def shop_logs() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.add(key="service.name").value.string_value = "checkout"
    scope = rl.scope_logs.add()
    for at_ms, severity, text, body, trace in (
        (1_000, 9, "INFO", "order 1 placed", T_OK),
        (61_000, 17, "ERROR", "card 4242 declined", T_FAILED),
    ):
        record = scope.log_records.add(
            time_unix_nano=BASE + at_ms * MS,
            severity_number=severity,
            severity_text=text,
            trace_id=bytes.fromhex(trace),
        )
        record.body.string_value = body
        record.attributes.add(key="order.id").value.string_value = body.split()[1]
    return req


def shop_metrics() -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "checkout"
    metric = rm.scope_metrics.add().metrics.add(name="queue.depth", unit="{item}", description="waiting")
    for at_s, queue, value in ((0, "orders", 3.0), (60, "orders", 5.0), (60, "refunds", 1.0)):
        point = metric.gauge.data_points.add(time_unix_nano=BASE + at_s * NS, as_double=value)
        point.attributes.add(key="queue").value.string_value = queue
    return req


@dataclass(frozen=True)
class Shop:
    tenant_id: str
    client: APIClient


@pytest.fixture
def shop(insert_requests: Callable[..., int]) -> Shop:
    created = logic.create_tenant("shop")
    insert_requests(Signal.TRACES, (created.tenant_id, shop_traces()))
    insert_requests(Signal.LOGS, (created.tenant_id, shop_logs()))
    insert_requests(Signal.METRICS, (created.tenant_id, shop_metrics()))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {logic.issue_api_key(created.tenant_id, 'tests').raw}")
    return Shop(created.tenant_id, client)


def get(shop: Shop, url: str, **params: Any) -> Any:
    response = shop.client.get(url, {**RANGE, **params})
    assert response.status_code == 200, response.json()
    return response.json()


def rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS, UTC).isoformat().replace("+00:00", "Z")


# --- services and operations -------------------------------------------------------------------------------


def test_services_with_red(shop: Shop) -> None:
    body = get(shop, "/api/v1/services")
    by_name = {s["service"]: s for s in body["services"]}
    assert list(by_name) == ["checkout", "frontend"]
    frontend, checkout = by_name["frontend"], by_name["checkout"]
    assert (frontend["requests"], frontend["errors"], frontend["error_rate"]) == (2.0, 0.0, 0.0)
    assert frontend["request_rate"] == pytest.approx(2 / RANGE_SECONDS)
    assert frontend["duration_ns"]["mean"] == pytest.approx(90 * MS)  # (120 + 60) / 2 ms
    assert (checkout["requests"], checkout["errors"], checkout["error_rate"]) == (2.0, 1.0, 0.5)
    assert checkout["duration_ns"]["mean"] == pytest.approx(55 * MS)  # (70 + 40) / 2 ms
    for service in body["services"]:
        q = service["duration_ns"]
        assert set(q) == {"mean", "p50", "p90", "p95", "p99"}
        assert q["p50"] <= q["p90"] <= q["p95"] <= q["p99"]
    low, high = 60 * MS * (1 - DIGEST_RELATIVE_ERROR), 120 * MS * (1 + DIGEST_RELATIVE_ERROR)
    assert low <= frontend["duration_ns"]["p50"] <= frontend["duration_ns"]["p99"] <= high


def test_a_service_with_only_logs_has_zeros(shop: Shop, insert_requests: Callable[..., int]) -> None:
    req = shop_logs()
    req.resource_logs[0].resource.attributes[0].value.string_value = "mailer"
    insert_requests(Signal.LOGS, (shop.tenant_id, req))
    mailer = get(shop, "/api/v1/services")["services"][2]
    assert mailer == {
        "service": "mailer",
        "requests": 0.0,
        "request_rate": 0.0,
        "errors": 0.0,
        "error_rate": 0.0,
        "duration_ns": {"mean": 0.0, "p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0},
    }


def test_one_service_or_only_the_names(shop: Shop, insert_requests: Callable[..., int]) -> None:
    everything = get(shop, "/api/v1/services")["services"]
    assert get(shop, "/api/v1/services", service="checkout")["services"] == [everything[0]]
    assert get(shop, "/api/v1/services", service="nobody")["services"] == []
    req = shop_logs()
    req.resource_logs[0].resource.attributes[0].value.string_value = "mailer"
    insert_requests(Signal.LOGS, (shop.tenant_id, req))
    assert get(shop, "/api/v1/services", service="mailer")["services"][0]["requests"] == 0.0
    assert get(shop, "/api/v1/services/names") == {"services": ["checkout", "frontend", "mailer"]}


def test_operations_of_a_service(shop: Shop) -> None:
    body = get(shop, "/api/v1/services/frontend/operations")
    assert body["service"] == "frontend"
    ops = {op["operation"]: op for op in body["operations"]}
    assert list(ops) == ["GET /checkout", "POST"]
    assert (ops["POST"]["requests"], ops["POST"]["errors"]) == (2.0, 1.0)
    assert ops["POST"]["duration_ns"]["mean"] == pytest.approx(70 * MS)  # (90 + 50) / 2 ms
    assert ops["GET /checkout"]["service"] == "frontend"
    failing = get(shop, "/api/v1/services/checkout/operations")["operations"]
    assert [(op["operation"], op["requests"], op["errors"]) for op in failing] == [
        ("POST /api/checkout", 2.0, 1.0)
    ]
    assert get(shop, "/api/v1/services/nobody/operations")["operations"] == []


def test_times_in_rfc3339_and_unix_seconds_agree(shop: Shop) -> None:
    as_unix = get(shop, "/api/v1/services")
    as_rfc = get(shop, "/api/v1/services", start=rfc3339(BASE - 60 * NS), end=rfc3339(BASE + 600 * NS))
    assert as_rfc == as_unix
    # only the first trace's minute
    first = get(shop, "/api/v1/services", start=rfc3339(BASE), end=str(BASE // NS + 30))
    assert {s["service"]: s["requests"] for s in first["services"]} == {"checkout": 1.0, "frontend": 1.0}


# --- traces -----------------------------------------------------------------------------------------------


def trace_ids(shop: Shop, **params: Any) -> list[str]:
    return [t["trace_id"] for t in get(shop, "/api/v1/traces", **params)["traces"]]


def test_trace_search_summaries(shop: Shop) -> None:
    traces = get(shop, "/api/v1/traces")["traces"]
    assert traces == [
        {
            "trace_id": T_FAILED,
            "root_service": "frontend",
            "root_operation": "GET /checkout",
            "start_time_unix_nano": str(BASE + 60 * NS),
            "duration_ns": 60 * MS,
            "span_count": 3,
            "error_count": 2,
            "services": ["checkout", "frontend"],
        },
        {
            "trace_id": T_OK,
            "root_service": "frontend",
            "root_operation": "GET /checkout",
            "start_time_unix_nano": str(BASE),
            "duration_ns": 120 * MS,
            "span_count": 3,
            "error_count": 0,
            "services": ["checkout", "frontend"],
        },
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"service": "checkout", "status": "error"}, [T_FAILED]),
        ({"service": "checkout", "status": "ok"}, [T_OK]),
        ({"operation": "POST"}, [T_FAILED, T_OK]),
        ({"service": "frontend", "operation": "POST /api/checkout"}, []),
        ({"min_duration": "100ms"}, [T_OK]),
        ({"min_duration": "0.1s"}, [T_OK]),
        ({"max_duration": "40000us"}, [T_FAILED]),
        ({"min_duration": "41ms", "max_duration": "70ms", "service": "checkout"}, [T_OK]),
        ({"attr.http.route": "/api/checkout"}, [T_FAILED, T_OK]),
        ({"attr.http.response.status_code": "500"}, [T_FAILED]),
        ({"attr.http.route": "/api/checkout", "attr.service.name": "frontend"}, []),
        ({"attr.peer.service": "checkout", "status": "ok"}, [T_OK]),
        ({"attr.peer.service": "checkout"}, [T_FAILED, T_OK]),
        ({"limit": "1"}, [T_FAILED]),
        ({"start": rfc3339(BASE + 30 * NS)}, [T_FAILED]),
        ({"end": str(BASE // NS + 30)}, [T_OK]),
    ],
)
def test_trace_search_conditions(shop: Shop, params: dict[str, str], expected: list[str]) -> None:
    assert trace_ids(shop, **params) == expected


def test_trace_by_id(shop: Shop) -> None:
    body = shop.client.get(f"/api/v1/traces/{T_FAILED.upper()}").json()
    assert body["traceId"] == T_FAILED
    assert [(s["serviceName"], s["name"]) for s in body["spans"]] == [
        ("frontend", "GET /checkout"),
        ("frontend", "POST"),
        ("checkout", "POST /api/checkout"),
    ]
    assert body["spans"][2]["status"] == {"code": 2, "message": ""}


# --- logs, metrics ----------------------------------------------------------------------------------------


def test_logs_search_and_attribute_filters(shop: Shop) -> None:
    records = get(shop, "/api/v1/logs")["records"]
    assert [r["body"]["stringValue"] for r in records] == ["card 4242 declined", "order 1 placed"]
    assert [r["body"]["stringValue"] for r in get(shop, "/api/v1/logs", trace_id=T_OK)["records"]] == [
        "order 1 placed"
    ]
    response = shop.client.get("/api/v1/logs", {**RANGE, "attr.order.id": "1"})
    assert response.status_code == 200
    assert [r["body"]["stringValue"] for r in response.json()["records"]] == ["order 1 placed"]
    assert get(shop, "/api/v1/logs", **{"attr.order.id": "2"})["records"] == []


def test_metric_names_labels_and_values(shop: Shop) -> None:
    names = get(shop, "/api/v1/metrics/names")["metrics"]
    assert names == [
        {
            "name": "queue.depth",
            "type": "gauge",
            "description": "waiting",
            "unit": "{item}",
            "points": 3,
            "services": ["checkout"],
        }
    ]
    assert get(shop, "/api/v1/metrics/labels") == {"labels": ["queue", "service.name"]}
    assert get(shop, "/api/v1/metrics/labels", name="queue.depth") == {"labels": ["queue", "service.name"]}
    assert get(shop, "/api/v1/metrics/labels", name="other") == {"labels": []}
    assert get(shop, "/api/v1/metrics/labels/queue/values") == {
        "label": "queue",
        "values": ["orders", "refunds"],
    }
    assert get(shop, "/api/v1/metrics/labels/service.name/values", name="queue.depth") == {
        "label": "service.name",
        "values": ["checkout"],
    }
    assert get(shop, "/api/v1/metrics/labels/nope/values") == {"label": "nope", "values": []}
    only_first = get(shop, "/api/v1/metrics/labels/queue/values", end=str(BASE // NS + 30))
    assert only_first["values"] == ["orders"]


# --- errors, topology -------------------------------------------------------------------------------------


def test_errors_from_the_aggregates(shop: Shop) -> None:
    groups = get(shop, "/api/v1/errors")["errors"]
    assert [(g["service"], g["exception_type"], g["example_message"]) for g in groups] == [
        ("checkout", "PaymentDeclined", "card 4242 declined"),  # the later of two with one error each
        ("frontend", "", "HTTP 500"),
    ]
    group = groups[0]
    assert int(group.pop("fingerprint")) > 0
    assert group == {
        "service": "checkout",
        "exception_type": "PaymentDeclined",
        "pattern": group["pattern"],
        "count": 1.0,
        "first_seen_unix_nano": str(BASE + 60_010 * MS),
        "last_seen_unix_nano": str(BASE + 60_010 * MS),
        "example_message": "card 4242 declined",
        "example_trace_id": T_FAILED,
        "example_span_id": T_FAILED[-4:] + f"{3:012x}",
    }
    assert "4242" not in group["pattern"]
    assert [g["service"] for g in get(shop, "/api/v1/errors", service="frontend")["errors"]] == ["frontend"]
    assert get(shop, "/api/v1/errors", service="mailer") == {"errors": []}
    assert len(get(shop, "/api/v1/errors", limit="1")["errors"]) == 1
    assert get(shop, "/api/v1/errors", start="2001-01-01T00:00:00Z", end="2001-01-02T00:00:00Z") == {
        "errors": []
    }


def test_topology(shop: Shop) -> None:
    body = get(shop, "/api/v1/topology")
    assert body["nodes"] == [
        {"service": "checkout", "instrumented": True},
        {"service": "frontend", "instrumented": True},
    ]
    [edge] = body["edges"]
    assert (edge["caller"], edge["callee"], edge["instrumented"], edge["calls"]) == (
        "frontend",
        "checkout",
        True,
        2.0,
    )
    assert edge["errors"] == 1.0
    assert edge["error_rate"] == 0.5
    assert edge["duration_ns"]["mean"] == pytest.approx(70 * MS)  # the client spans: (90 + 50) / 2 ms


# --- the cache --------------------------------------------------------------------------------------------


def cache_count(kind: str, result: str) -> float:
    sample = self_metrics.REGISTRY.get_sample_value(
        "ollystack_query_cache_requests_total", {"kind": kind, "result": result}
    )
    return sample or 0.0


def test_a_repeated_read_is_a_cache_hit(shop: Shop) -> None:
    hits, misses = cache_count("services.overview", "hit"), cache_count("services.overview", "miss")
    first = get(shop, "/api/v1/services")
    assert (cache_count("services.overview", "hit"), cache_count("services.overview", "miss")) == (
        hits,
        misses + 1,
    )
    assert get(shop, "/api/v1/services") == first
    assert cache_count("services.overview", "hit") == hits + 1
    # another range is another question
    get(shop, "/api/v1/services", end=str(BASE // NS + 30))
    assert cache_count("services.overview", "miss") == misses + 2


# --- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "params", "message"),
    [
        ("/api/v1/traces", {"min_duration": "100"}, "min_duration: '100' is not a duration; send a number"),
        ("/api/v1/traces", {"max_duration": "fast"}, "max_duration: 'fast' is not a duration"),
        ("/api/v1/traces", {"min_duration": "2s", "max_duration": "1s"}, "max_duration: is shorter than"),
        ("/api/v1/traces", {"status": "failed"}, 'status: "failed" is not a valid choice.'),
        ("/api/v1/traces", {"limit": "0"}, "limit: "),
        ("/api/v1/traces", {"limit": "5000"}, "limit: "),
        ("/api/v1/traces", {"attr.": "x"}, "attr.: names no attribute; send attr.<key>=<value>"),
        ("/api/v1/traces", {"atr.http.route": "x"}, "atr.http.route: unknown parameter"),
        ("/api/v1/traces", {"start": "last tuesday"}, "start: 'last tuesday' is not a time; use RFC 3339"),
        ("/api/v1/traces/xyz", {}, "trace_id: 'xyz' is not a trace id"),
        ("/api/v1/services/checkout/operations", {"end": "1700000000000"}, "end: '1700000000000' looks like"),
        ("/api/v1/errors", {"limit": "-1"}, "limit: "),
        ("/api/v1/errors", {"servic": "x"}, "servic: unknown parameter; this endpoint accepts"),
        ("/api/v1/topology", {"start": "1700000100", "end": "1700000000"}, "end: is before start"),
        ("/api/v1/metrics/labels", {"label": "x"}, "label: unknown parameter"),
        ("/api/v1/metrics/labels/queue/values", {"start": "soon"}, "start: 'soon' is not a time"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    shop: Shop, url: str, params: dict[str, str], message: str
) -> None:
    response = shop.client.get(url, params)
    assert response.status_code == 400, response.json()
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"].startswith(message)


def test_an_attribute_given_twice_is_refused(shop: Shop) -> None:
    response = shop.client.get("/api/v1/traces?attr.http.route=/a&attr.http.route=/b")
    assert response.status_code == 400
    assert response.json() == {"error": "attr.http.route: given more than once; an attribute has one value"}


def test_unauthenticated_reads_are_refused() -> None:
    for url in ("/api/v1/traces", "/api/v1/errors", "/api/v1/topology", "/api/v1/metrics/labels"):
        response = APIClient().get(url)
        assert response.status_code == 401, url
        assert "Authorization: Bearer" in response.json()["error"]
