"""Real data in the embedded ClickHouse engine for the read API: two tenants, each with its own telemetry.

The schema is applied once per session on the process-wide backend; every test creates fresh tenants, so
rows of other tests never match its tenant filter.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from rest_framework.test import APIClient

from ollystack.clickhouse import Signal
from tenants import logic

NS = 1_000_000_000


@pytest.fixture
def insert(insert_requests: Callable[..., int]) -> Callable[[Signal, str, Any], int]:
    """Insert one OTLP export request for a tenant, the way the ingest path does (a framed segment)."""
    return lambda signal, tenant_id, request: insert_requests(signal, (tenant_id, request))


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def trace_request(service: str, trace_id: bytes, base_ns: int) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", service))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    root = ss.spans.add()
    root.CopyFrom(
        Span(
            trace_id=trace_id,
            span_id=bytes.fromhex("00000000000000a1"),
            name="GET /checkout",
            kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=base_ns,
            end_time_unix_nano=base_ns + 50_000_000,
            attributes=[kv("http.route", "/checkout")],
        )
    )
    child = ss.spans.add()
    child.CopyFrom(
        Span(
            trace_id=trace_id,
            span_id=bytes.fromhex("00000000000000a2"),
            parent_span_id=bytes.fromhex("00000000000000a1"),
            name="SELECT orders",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=base_ns + 10_000_000,
            end_time_unix_nano=base_ns + 20_000_000,
        )
    )
    return req


def log_request(service: str, records: list[tuple[int, int, str, str, bytes]]) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", service))
    sl = rl.scope_logs.add()
    for ts, number, text, body, trace_id in records:
        sl.log_records.append(
            LogRecord(
                time_unix_nano=ts,
                observed_time_unix_nano=ts,
                severity_number=number,  # type: ignore[arg-type]
                severity_text=text,
                body=AnyValue(string_value=body),
                trace_id=trace_id,
            )
        )
    return req


def metric_request(service: str, name: str, points: list[tuple[int, float]]) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", service))
    sm = rm.scope_metrics.add()
    sm.metrics.append(
        Metric(
            name=name,
            unit="1",
            description="test gauge",
            gauge=Gauge(data_points=[NumberDataPoint(time_unix_nano=t, as_double=v) for t, v in points]),
        )
    )
    return req


@dataclass(frozen=True)
class TenantData:
    tenant_id: str
    name: str
    api_key: str
    service: str
    trace_id: str
    base_ns: int

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.api_key}")
        return client


def _populate(insert: Callable[[Signal, str, Any], int], name: str, service: str) -> TenantData:
    created = logic.create_tenant(name)
    api_key = logic.issue_api_key(created.tenant_id, "tests").raw
    trace_id = uuid.uuid4().bytes
    base = time.time_ns() - 10 * 60 * NS  # ten minutes ago: inside the default one-hour range
    insert(Signal.TRACES, created.tenant_id, trace_request(service, trace_id, base))
    insert(
        Signal.LOGS,
        created.tenant_id,
        log_request(
            service,
            [
                (base + 1 * NS, 9, "INFO", f"{service} started", b""),
                (base + 2 * NS, 13, "WARN", f"{service} slow checkout", trace_id),
                (base + 3 * NS, 17, "ERROR", f"{service} payment failed", trace_id),
            ],
        ),
    )
    insert(
        Signal.METRICS,
        created.tenant_id,
        metric_request(service, f"{service}.queue.depth", [(base + 1 * NS, 1.5), (base + 2 * NS, 2.5)]),
    )
    return TenantData(created.tenant_id, name, api_key, service, trace_id.hex(), base)


@pytest.fixture
def tenant_a(db: None, insert: Callable[[Signal, str, Any], int]) -> TenantData:
    return _populate(insert, "tenant-a", "checkout")


@pytest.fixture
def tenant_b(db: None, insert: Callable[[Signal, str, Any], int]) -> TenantData:
    return _populate(insert, "tenant-b", "billing")
