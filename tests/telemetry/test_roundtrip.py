"""What goes in comes back out: every OTLP field and AnyValue type, read through the read functions."""

from __future__ import annotations

import os
from typing import Any

from ollystack.clickhouse import Signal
from ollystack.telemetry.logs import LogQuery, search_logs
from ollystack.telemetry.metrics import MetricQuery, list_metric_names, list_metric_points
from ollystack.telemetry.services import list_services
from ollystack.telemetry.traces import get_trace
from tests.telemetry.builders import (
    BASE_NS,
    NS,
    expected_logs,
    expected_points,
    expected_spans,
    full_logs_request,
    full_metrics_request,
    full_trace_request,
)

WINDOW = (BASE_NS - 10 * NS, BASE_NS + 3600 * NS)


def test_trace_roundtrip_keeps_every_field(insert_requests: Any, tenant_id: str) -> None:
    trace_id = os.urandom(16)
    req = full_trace_request(trace_id)
    assert insert_requests(Signal.TRACES, (tenant_id, req)) == 3
    assert get_trace(tenant_id, trace_id.hex()) == expected_spans(req)
    assert get_trace(tenant_id, trace_id.hex().upper()) == expected_spans(req)


def test_logs_roundtrip_every_body_type(insert_requests: Any, tenant_id: str) -> None:
    req = full_logs_request()
    count = len(req.resource_logs[0].scope_logs[0].log_records)
    assert insert_requests(Signal.LOGS, (tenant_id, req)) == count
    page = search_logs(tenant_id, LogQuery(*WINDOW, limit=1000))
    assert page.next_cursor is None
    assert page.records == list(reversed(expected_logs(req)))


def test_metric_points_roundtrip_all_kinds(insert_requests: Any, tenant_id: str) -> None:
    req = full_metrics_request()
    expected = expected_points(req)
    assert insert_requests(Signal.METRICS, (tenant_id, req)) == len(expected)
    points = list_metric_points(tenant_id, MetricQuery(*WINDOW))
    key = lambda p: (p["name"], p["timeUnixNano"])  # noqa: E731
    assert sorted(points, key=key) == sorted(expected, key=key)
    assert {p["type"] for p in points} == {"gauge", "sum", "histogram", "exponentialHistogram", "summary"}
    names = list_metric_names(tenant_id, *WINDOW)
    assert [(n["name"], n["type"], n["points"]) for n in names] == [
        ("gc.pause", "summary", 1),
        ("latency", "histogram", 2),
        ("latency.exp", "exponentialHistogram", 1),
        ("queue.depth", "gauge", 2),
        ("requests", "sum", 1),
    ]
    only = list_metric_points(tenant_id, MetricQuery(*WINDOW, name="requests", service="checkout"))
    assert [p["asInt"] for p in only] == ["-5"]


def test_list_services_across_signals(insert_requests: Any, tenant_id: str) -> None:
    insert_requests(Signal.TRACES, (tenant_id, full_trace_request(os.urandom(16), service="web")))
    insert_requests(Signal.LOGS, (tenant_id, full_logs_request(service="worker")))
    insert_requests(Signal.METRICS, (tenant_id, full_metrics_request(service="api")))
    assert list_services(tenant_id, *WINDOW) == ["api", "web", "worker"]
    assert list_services(tenant_id, BASE_NS + 7200 * NS, BASE_NS + 7300 * NS) == []
