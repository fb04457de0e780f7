"""Fixtures for the ingest path: real tenants and keys, the real embedded ClickHouse, sample requests."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ingest.pipeline import Pipeline
from ollystack.clickhouse import Backend, NativeBackend
from tenants import logic

NS = 1_000_000_000
BASE_NS = 1_700_000_000 * NS


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unreachable_clickhouse() -> Iterator[Backend]:
    """A real server backend pointed at a port nobody listens on: every insert fails."""
    backend = NativeBackend(f"clickhouse://default@127.0.0.1:{closed_port()}/default?connect_timeout=1")
    yield backend
    backend.close()


@pytest.fixture
def tenant_key(db: Any) -> tuple[str, logic.IngestPrincipal]:
    """A fresh tenant and one of its ingest keys: (raw key, principal)."""
    created = logic.create_tenant(f"t-{uuid.uuid4().hex[:10]}")
    issued = logic.issue_ingest_key(created.tenant_id, "test")
    return issued.raw, logic.IngestPrincipal(created.tenant_id, created.name, issued.key_id)


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def trace_request(
    spans: int = 3, service: str = "checkout", trace_id: bytes | None = None
) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", service))
    ss = rs.scope_spans.add()
    ss.scope.name = "test"
    trace_id = trace_id or uuid.uuid4().bytes
    for i in range(spans):
        span = ss.spans.add(
            trace_id=trace_id,
            span_id=(i + 1).to_bytes(8, "big"),
            name=f"op-{i}",
            kind=2,
            start_time_unix_nano=BASE_NS + i,
            end_time_unix_nano=BASE_NS + i + 1000,
        )
        if i:
            span.parent_span_id = (1).to_bytes(8, "big")
            link = span.links.add(trace_id=trace_id, span_id=(1).to_bytes(8, "big"))
            link.attributes.append(kv("link", "yes"))
        span.attributes.append(kv("http.route", "/cart"))
        span.status.code = 2 if i == 0 else 1
    return req


def logs_request(records: int = 2, service: str = "checkout") -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", service))
    sl = rl.scope_logs.add()
    for i in range(records):
        record = sl.log_records.add(time_unix_nano=BASE_NS + i, severity_number=9, severity_text="INFO")
        record.body.string_value = f"hello {i}"
        record.trace_id = uuid.uuid4().bytes
        record.span_id = (i + 1).to_bytes(8, "big")
    sl.log_records.add(time_unix_nano=BASE_NS, severity_number=17)  # no trace context: ids stay empty
    return req


def metrics_request(service: str = "checkout") -> ExportMetricsServiceRequest:
    """One metric of every kind: gauge 2 points, sum 1, histogram 1, exponential histogram 1, summary 1."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", service))
    sm = rm.scope_metrics.add()
    gauge = sm.metrics.add(name="queue.depth", unit="1")
    gauge.gauge.data_points.add(time_unix_nano=BASE_NS, as_int=-5)
    point = gauge.gauge.data_points.add(time_unix_nano=BASE_NS + 1, as_double=1.5)
    point.exemplars.add(
        time_unix_nano=BASE_NS, as_double=1.5, trace_id=uuid.uuid4().bytes, span_id=b"12345678"
    )
    total = sm.metrics.add(name="requests")
    total.sum.aggregation_temporality = 2
    total.sum.is_monotonic = True
    total.sum.data_points.add(start_time_unix_nano=BASE_NS, time_unix_nano=BASE_NS + 1, as_int=2**62)
    hist = sm.metrics.add(name="latency", unit="ms")
    hist.histogram.aggregation_temporality = 1
    hist.histogram.data_points.add(
        time_unix_nano=BASE_NS, count=3, sum=12.5, bucket_counts=[1, 2, 0], explicit_bounds=[5, 10]
    )
    exp = sm.metrics.add(name="latency.exp")
    exp.exponential_histogram.data_points.add(time_unix_nano=BASE_NS, count=1, scale=2, zero_count=0)
    summary = sm.metrics.add(name="latency.summary")
    summary.summary.data_points.add(time_unix_nano=BASE_NS, count=1, sum=1.0)
    sm.metrics.add(name="empty")  # no data: counts as nothing
    return req


def run_pipeline(
    wal_dir: Path, backend: Backend, body: Callable[[Pipeline], Awaitable[Any]], **options: Any
) -> Pipeline:
    """Start a pipeline on ``wal_dir``, run ``body`` with it, stop it (draining the WAL)."""
    options = {"max_rows": 10_000, "max_delay_ms": 60_000, **options}
    pipeline = Pipeline(wal_dir, backend=backend, **options)

    async def main() -> None:
        await pipeline.start()
        try:
            await body(pipeline)
        finally:
            await pipeline.stop()

    asyncio.run(main())
    return pipeline
