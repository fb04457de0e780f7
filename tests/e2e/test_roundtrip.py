"""Every field an OpenTelemetry SDK sends comes back unchanged through the REST API."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tests.e2e.conftest import Server, wait_for
from tests.e2e.otlp_compare import assert_same, parse

pytestmark = pytest.mark.e2e

ATTRS: dict[str, Any] = {
    "str": "héllo wörld",
    "empty": "",
    "bool_t": True,
    "bool_f": False,
    "int": 42,
    "int_neg": -7,
    "int_max": 2**63 - 1,
    "int_min": -(2**63),
    "double": 0.1,
    "double_big": 1e308,
    "double_neg": -2.5,
    "str_arr": ["a", "b", ""],
    "int_arr": [1, -2, 3],
    "double_arr": [0.5, 1.5],
    "bool_arr": [True, False],
}


def _resource(service: str, transport: str) -> Resource:
    return Resource.create(
        {
            "service.name": service,
            "deployment.environment": "e2e",
            "transport": transport,
            "host.cpu": 2,
            "sampled": True,
            "ratio": 0.25,
            "tags": ["x", "y"],
        }
    )


class Recording:
    """Wraps an exporter's export() to keep exactly what it sent."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter
        self.sent: list[Any] = []
        self.results: list[Any] = []

    def export(self, batch: Any, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(batch)
        result = self.exporter.export(batch, *args, **kwargs)
        self.results.append(result)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exporter, name)


EXPORTERS = {
    "traces": (GrpcSpanExporter, HttpSpanExporter),
    "logs": (GrpcLogExporter, HttpLogExporter),
    "metrics": (GrpcMetricExporter, HttpMetricExporter),
}


def exporter(server: Server, signal: str, transport: str, key: str) -> Recording:
    """The SDK's own OTLP exporter for the signal and transport, recording what it sends."""
    grpc_exporter, http_exporter = EXPORTERS[signal]
    headers = {"authorization": f"Bearer {key}"}
    if transport == "grpc":
        return Recording(grpc_exporter(endpoint=server.otlp_grpc, insecure=True, headers=headers))
    return Recording(http_exporter(endpoint=f"{server.otlp_http}/v1/{signal}", headers=headers))


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_traces_round_trip_every_field(server: Server, transport: str) -> None:
    key = server.bootstrap()["ingest_key"]
    api_key = server.bootstrap()["api_key"]
    recording = exporter(server, "traces", transport, key)
    provider = TracerProvider(resource=_resource(f"checkout-{transport}", transport))
    provider.add_span_processor(SimpleSpanProcessor(recording))  # type: ignore[arg-type]
    tracer = provider.get_tracer(
        "e2e.tracer",
        "1.2.3",
        schema_url="https://opentelemetry.io/schemas/1.21.0",
        attributes={"scope.attr": "s", "scope.n": 3},
    )

    linked = SpanContext(
        trace_id=0xABCDEF0123456789ABCDEF0123456789,
        span_id=0x0123456789ABCDEF,
        is_remote=True,
        trace_flags=TraceFlags(1),
    )
    t0 = time.time_ns() - 5_000_000_000 + 123  # nanosecond precision, not a multiple of 1 000
    with tracer.start_as_current_span(
        "root", kind=SpanKind.SERVER, start_time=t0, attributes=ATTRS, end_on_exit=False
    ) as root:
        child = tracer.start_span(
            "child",
            kind=SpanKind.CLIENT,
            start_time=t0 + 1_001,
            links=[Link(linked, {"link.attr": 1, "link.s": "l"})],
        )
        child.add_event("retry", {"attempt": 2, "reason": "timeout"}, timestamp=t0 + 2_003)
        child.add_event("empty-event", timestamp=t0 + 3_005)
        child.set_status(Status(StatusCode.ERROR, "upstream failed"))
        child.end(end_time=t0 + 999_999_997)
        root.set_status(Status(StatusCode.OK))
    root.end(end_time=t0 + 1_500_000_011)
    provider.force_flush()
    provider.shutdown()

    assert [r.name for r in recording.results] == ["SUCCESS", "SUCCESS"]
    sent = encode_spans([s for batch in recording.sent for s in batch])
    trace_id = sent.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()

    body = wait_for(lambda: _trace(server, trace_id, api_key, spans=2))
    spans = {s["spanId"]: s for s in body["spans"]}
    for rs in sent.resource_spans:
        for ss in rs.scope_spans:
            for pb in ss.spans:
                got = spans[pb.span_id.hex()]
                assert_same(parse(got, PbSpan), pb)
                assert_same(parse(got["resource"], PbResource), rs.resource)
                assert_same(parse(got["scope"], InstrumentationScope), ss.scope)
                assert got["scopeSchemaUrl"] == ss.schema_url
                assert got["serviceName"] == f"checkout-{transport}"
                assert got["startTimeUnixNano"] == str(pb.start_time_unix_nano)


def _trace(server: Server, trace_id: str, api_key: str, spans: int) -> dict[str, Any] | None:
    """The trace once it has all its spans (ingest is asynchronous after the ack), else None."""
    status, body = server.get(f"/api/v1/traces/{trace_id}", api_key)
    if status == 404:
        return None
    assert status == 200, body
    return body if len(body["spans"]) >= spans else None


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_logs_round_trip_every_field(server: Server, transport: str) -> None:
    key = server.bootstrap()["ingest_key"]
    api_key = server.bootstrap()["api_key"]
    recording = exporter(server, "logs", transport, key)
    service = f"billing-logs-{transport}"
    provider = LoggerProvider(resource=_resource(service, transport))
    provider.add_log_record_processor(SimpleLogRecordProcessor(recording))  # type: ignore[arg-type]
    logger = provider.get_logger("e2e.logger", "0.9")

    tracer = TracerProvider().get_tracer("ctx")
    t0 = time.time_ns() - 2_000_000_000 + 7
    bodies: list[Any] = [
        "payment declined for order 8812",
        12345,
        2.5,
        True,
        b"\x00\x01\xff",
        ["a", 1],
        {"k": "v", "n": 2, "nested": {"deep": [1.5, False]}},
    ]
    with tracer.start_as_current_span("work"):
        for i, body in enumerate(bodies):
            logger.emit(
                timestamp=t0 + i,
                observed_timestamp=t0 + i + 1_000,
                severity_number=SeverityNumber.WARN if i % 2 else SeverityNumber.ERROR,
                severity_text="WARN" if i % 2 else "ERROR",
                body=body,
                attributes={**ATTRS, "i": i},
                event_name="payment.declined" if i == 0 else None,
            )
    provider.force_flush()
    provider.shutdown()
    assert all(r.name == "SUCCESS" for r in recording.results)
    sent = encode_logs([r for batch in recording.sent for r in batch])
    expected = [(rl, sl, lr) for rl in sent.resource_logs for sl in rl.scope_logs for lr in sl.log_records]
    assert len(expected) == len(bodies)

    def fetch() -> list[dict[str, Any]] | None:
        page = server.api(f"/api/v1/logs?service={service}&start={(t0 // 10**9) - 60}&limit=100", api_key)
        return page["records"] if len(page["records"]) == len(bodies) else None

    records = wait_for(fetch)
    times = [int(r["timeUnixNano"]) for r in records]
    assert times == sorted(times, reverse=True), "newest first"
    by_time = {r["timeUnixNano"]: r for r in records}
    for rl, sl, lr in expected:
        got = by_time[str(lr.time_unix_nano)]
        assert_same(parse(got, LogRecord), lr)
        assert_same(parse(got["resource"], PbResource), rl.resource)
        assert_same(parse(got["scope"], InstrumentationScope), sl.scope)
        assert got["traceId"] == lr.trace_id.hex()
        assert len(got["traceId"]) == 32


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_metrics_round_trip_every_kind(server: Server, transport: str) -> None:
    key = server.bootstrap()["ingest_key"]
    api_key = server.bootstrap()["api_key"]
    recording = exporter(server, "metrics", transport, key)
    reader = PeriodicExportingMetricReader(recording, export_interval_millis=3_600_000)  # type: ignore[arg-type]
    service = f"inventory-metrics-{transport}"
    provider = MeterProvider(
        resource=_resource(service, transport),
        metric_readers=[reader],
        views=[View(instrument_name="payload.size", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("e2e.meter", "2.0")
    meter.create_counter("orders", unit="1", description="orders placed").add(
        5, {"region": "eu", "vip": True}
    )
    meter.create_up_down_counter("queue.depth").add(-3, {"queue": "q1"})
    hist = meter.create_histogram("latency", unit="ms")
    for v in (1.0, 7.5, 120.0, 900.0):
        hist.record(v, {"route": "/pay"})
    exp = meter.create_histogram("payload.size", unit="By")
    for v in (0.0, 3.0, 1024.0, 1e6):
        exp.record(v)
    meter.create_gauge("temperature", unit="Cel").set(21.5, {"room": "lab", "floor": 3})
    provider.force_flush()
    provider.shutdown()
    assert recording.sent
    assert all(r.name == "SUCCESS" for r in recording.results)

    # The SDK has no summary instrument; send one as a raw OTLP request over gRPC.
    summary_req = metrics_service_pb2.ExportMetricsServiceRequest()
    rm = summary_req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = service
    sm = rm.scope_metrics.add()
    sm.scope.name = "raw"
    metric = sm.metrics.add(name="rpc.duration.summary", unit="s", description="legacy summary")
    point = metric.summary.data_points.add(
        start_time_unix_nano=time.time_ns() - 10**9, time_unix_nano=time.time_ns(), count=10, sum=4.25
    )
    point.attributes.add(key="method").value.string_value = "GET"
    for q, v in ((0.5, 0.3), (0.99, 1.7)):
        point.quantile_values.add(quantile=q, value=v)
    with grpc.insecure_channel(server.otlp_grpc) as channel:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
        stub.Export(summary_req, metadata=[("authorization", f"Bearer {key}")], timeout=10)

    requests = [encode_metrics(batch) for batch in recording.sent]
    requests.append(summary_req)
    expected: list[tuple[str, str, Any]] = []
    for rmx in (r for req in requests for r in req.resource_metrics):
        for smx in rmx.scope_metrics:
            for m in smx.metrics:
                kind = m.WhichOneof("data")
                for p in getattr(m, kind).data_points:
                    expected.append((m.name, kind, p))
    kinds = {k for _, k, _ in expected}
    assert kinds == {"sum", "histogram", "exponential_histogram", "gauge", "summary"}

    point_type = {
        "gauge": metrics_pb2.NumberDataPoint,
        "sum": metrics_pb2.NumberDataPoint,
        "histogram": metrics_pb2.HistogramDataPoint,
        "exponential_histogram": metrics_pb2.ExponentialHistogramDataPoint,
        "summary": metrics_pb2.SummaryDataPoint,
    }
    api_type = {
        "gauge": "gauge",
        "sum": "sum",
        "histogram": "histogram",
        "exponential_histogram": "exponentialHistogram",
        "summary": "summary",
    }

    def fetch() -> list[dict[str, Any]] | None:
        points = server.api(f"/api/v1/metrics?service={service}&limit=1000", api_key)["points"]
        return points if len(points) >= len(expected) else None

    points = wait_for(fetch)
    assert len(points) == len(expected)
    for name, kind, pb in expected:
        matches = [p for p in points if p["name"] == name and p["timeUnixNano"] == str(pb.time_unix_nano)]
        assert len(matches) == 1, (name, matches)
        got = matches[0]
        assert got["type"] == api_type[kind]
        assert_same(parse(got, point_type[kind]), pb)
