"""Every materialized view against known data: the aggregates are checked exactly."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ollystack.clickhouse import Backend, Signal
from ollystack.clickhouse.otlp import frame, sample_threshold
from ollystack.telemetry.anomalies import current_anomalies
from ollystack.telemetry.errors import list_errors
from ollystack.telemetry.log_volume import log_volume
from ollystack.telemetry.services import operation_red, service_red
from ollystack.telemetry.topology import service_topology

NS = 1_000_000_000
MS = 1_000_000
MINUTE = 60 * NS
T0 = 1_700_000_040 * NS  # a whole minute
DAY = (T0 - 3600 * NS, T0 + 3600 * NS)
SERVER, CLIENT, INTERNAL = 2, 3, 1


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span_id() -> bytes:
    return uuid.uuid4().bytes[:8]


class Traces:
    """A trace request under construction: one resource (service) per ``span`` call's service."""

    def __init__(self) -> None:
        self.req = ExportTraceServiceRequest()
        self._scopes: dict[str, Any] = {}

    def span(
        self,
        service: str,
        *,
        kind: int = SERVER,
        start: int = T0,
        duration_ms: float = 10,
        error: bool = False,
        name: str = "GET /items",
        trace_id: bytes | None = None,
        span_id_: bytes | None = None,
        parent: bytes = b"",
        attributes: dict[str, str] | None = None,
        exception: tuple[str, str] | None = None,
        status_message: str = "",
    ) -> Any:
        if service not in self._scopes:
            rs = self.req.resource_spans.add()
            rs.resource.attributes.append(kv("service.name", service))
            self._scopes[service] = rs.scope_spans.add()
        span = self._scopes[service].spans.add(
            trace_id=trace_id or uuid.uuid4().bytes,
            span_id=span_id_ or span_id(),
            parent_span_id=parent,
            name=name,
            kind=kind,
            start_time_unix_nano=start,
            end_time_unix_nano=start + int(duration_ms * MS),
        )
        for key, value in (attributes or {}).items():
            span.attributes.append(kv(key, value))
        if error:
            span.status.code = 2
            span.status.message = status_message
        if exception:
            event = span.events.add(name="exception", time_unix_nano=start)
            event.attributes.append(kv("exception.type", exception[0]))
            event.attributes.append(kv("exception.message", exception[1]))
        return span


@pytest.fixture
def insert_framed(clickhouse: Backend, tmp_path: Any) -> Callable[..., int]:
    """Insert requests as one segment, each frame with its own sampling threshold (``(tenant, request,
    threshold)``); the segment name is the deduplication token."""

    def insert(signal: Signal, *frames: tuple[str, Any, int], token: str | None = None) -> int:
        token = token or uuid.uuid4().hex
        path = tmp_path / f"{token}.seg"
        path.write_bytes(b"".join(frame(t, r.SerializeToString(), th) for t, r, th in frames))
        sampled = any(th for _t, _r, th in frames)
        return clickhouse.insert_otlp_segment(signal, path, token, sampled=sampled)

    return insert


# --- service_metrics_1m ------------------------------------------------------------------------------


def test_red_per_service_and_operation_sums_weights_per_minute(
    tenant_id: str, insert_framed: Callable[..., int]
) -> None:
    t = Traces()
    for ms, error in ((10, False), (20, True), (30, False)):  # minute 0: 3 entry spans, one error
        t.span("api", duration_ms=ms, error=error, start=T0 + 5 * NS)
    for ms in (40, 50):  # minute 1
        t.span("api", duration_ms=ms, start=T0 + MINUTE + 5 * NS)
    t.span("api", kind=INTERNAL, name="db query", parent=span_id(), duration_ms=5, start=T0)  # not an entry
    t.span("web", kind=CLIENT, name="GET /items", duration_ms=70, start=T0)  # root: an entry of web
    kept = uuid.uuid4().bytes[:9] + b"\xff" * 7  # randomness at the top: kept at any sampling rate
    sampled = Traces()
    sampled.span("api", duration_ms=60, start=T0 + MINUTE + 7 * NS, trace_id=kept)
    insert_framed(Signal.TRACES, (tenant_id, t.req, 0), (tenant_id, sampled.req, sample_threshold(0.5)))

    red = {r.service: r for r in service_red(tenant_id, *DAY)}
    api = red["api"]
    assert api.requests == 3 + 2 + 2  # the sampled span stands for 2
    assert api.errors == 1
    assert api.mean_ns == pytest.approx((10 + 20 + 30 + 40 + 50 + 2 * 60) / 7 * MS)
    assert api.p50_ns == pytest.approx(40 * MS, rel=0.3)
    assert api.p99_ns == pytest.approx(60 * MS, rel=0.05)
    assert red["web"].requests == 1

    [first_minute] = [r for r in service_red(tenant_id, T0, T0 + MINUTE) if r.service == "api"]
    assert (first_minute.requests, first_minute.errors) == (3, 1)
    # a range inside one minute reads that minute: aggregates have minute resolution
    [inside] = [r for r in service_red(tenant_id, T0 + MINUTE + 1, T0 + MINUTE + 2) if r.service == "api"]
    assert inside.requests == 4

    operations = {r.operation: r for r in operation_red(tenant_id, "api", *DAY)}
    assert set(operations) == {"GET /items", "db query"}
    assert operations["db query"].requests == 1
    assert operations["GET /items"].requests == 7


def test_a_replayed_segment_is_not_counted_twice_by_the_views(
    tenant_id: str, insert_framed: Callable[..., int]
) -> None:
    t = Traces()
    t.span("api", error=True, exception=("IOError", "disk 7 full"))
    t.span("web", kind=CLIENT, attributes={"db.system": "postgresql"})
    insert_framed(Signal.TRACES, (tenant_id, t.req, 0), token="replayed-segment-" + tenant_id)
    insert_framed(Signal.TRACES, (tenant_id, t.req, 0), token="replayed-segment-" + tenant_id)
    assert {r.service: r.requests for r in service_red(tenant_id, *DAY)} == {"api": 1, "web": 1}
    assert [e.count for e in list_errors(tenant_id, *DAY)] == [1]
    assert [e.calls for e in service_topology(tenant_id, *DAY)] == [1]


# --- error_aggregates -----------------------------------------------------------------------------------


def test_errors_group_by_type_and_fingerprint_with_first_and_last_seen(
    tenant_id: str, insert_framed: Callable[..., int]
) -> None:
    t = Traces()
    first = t.span("api", error=True, start=T0 + 1 * NS, exception=("KeyError", "user 123 not found"))
    last = t.span("api", error=True, start=T0 + 9 * NS, exception=("KeyError", "user 45678 not found"))
    order = "order 3f2b8a1c-9d4e-4f6a-8b7c-1d2e3f4a5b6c failed at 0x7ffde4a1"
    t.span("api", error=True, start=T0 + 2 * NS, exception=("PaymentError", order))
    t.span("api", error=True, start=T0 + 3 * NS, status_message="timeout after 30s")
    t.span("api", error=True, start=T0 + 4 * NS, status_message="timeout after 5s")
    t.span("api", error=False, start=T0, exception=("KeyError", "handled, not an error span"))
    t.span("worker", error=True, start=T0, exception=("KeyError", "user 1 not found"))
    insert_framed(Signal.TRACES, (tenant_id, t.req, 0))

    groups = {(g.service, g.exception_type, g.pattern): g for g in list_errors(tenant_id, *DAY)}
    assert set(groups) == {
        ("api", "KeyError", "user <n> not found"),
        ("api", "PaymentError", "order <uuid> failed at <hex>"),
        ("api", "", "timeout after <n>s"),
        ("worker", "KeyError", "user <n> not found"),
    }
    users = groups[("api", "KeyError", "user <n> not found")]
    assert users.count == 2
    assert (users.first_seen_ns, users.last_seen_ns) == (T0 + 1 * NS, T0 + 9 * NS)
    assert users.example_message in {"user 123 not found", "user 45678 not found"}
    assert users.example_trace_id in {first.trace_id.hex(), last.trace_id.hex()}  # one of the group's own
    assert groups[("api", "", "timeout after <n>s")].count == 2
    assert groups[("api", "PaymentError", "order <uuid> failed at <hex>")].example_message == order
    assert list_errors(tenant_id, *DAY)[0].pattern in {"user <n> not found", "timeout after <n>s"}  # by count
    assert {g.service for g in list_errors(tenant_id, *DAY, service="worker")} == {"worker"}


# --- service_topology -------------------------------------------------------------------------------------


def test_topology_counts_each_call_once_whichever_side_arrives_first(
    tenant_id: str, insert_framed: Callable[..., int]
) -> None:
    def call(trace: bytes, client: bytes, *, error: bool = False) -> tuple[Traces, Traces]:
        caller, callee = Traces(), Traces()
        caller.span("web", kind=CLIENT, trace_id=trace, span_id_=client, duration_ms=30, error=error)
        callee.span("api", kind=SERVER, trace_id=trace, parent=client, duration_ms=25, error=error)
        return caller, callee

    # 1. both sides in one insert
    caller, callee = call(uuid.uuid4().bytes, span_id())
    insert_framed(Signal.TRACES, (tenant_id, caller.req, 0), (tenant_id, callee.req, 0))
    # 2. the server span first (it ends first), the client span later
    caller, callee = call(uuid.uuid4().bytes, span_id(), error=True)
    insert_framed(Signal.TRACES, (tenant_id, callee.req, 0))
    insert_framed(Signal.TRACES, (tenant_id, caller.req, 0))
    # 3. the client span first
    caller, callee = call(uuid.uuid4().bytes, span_id())
    insert_framed(Signal.TRACES, (tenant_id, caller.req, 0))
    insert_framed(Signal.TRACES, (tenant_id, callee.req, 0))
    # 4. a database the caller names in its client span's attributes
    db = Traces()
    db.span("api", kind=CLIENT, name="SELECT", attributes={"db.system": "postgresql"}, duration_ms=4)
    db.span("api", kind=CLIENT, name="SELECT", attributes={"db.system": "postgresql"}, duration_ms=6)
    # 5. a call inside one service is not an edge
    same = Traces()
    same_client = span_id()
    same.span("api", kind=CLIENT, span_id_=same_client)
    same.span("api", kind=SERVER, parent=same_client)
    insert_framed(Signal.TRACES, (tenant_id, db.req, 0), (tenant_id, same.req, 0))

    edges = {(e.caller, e.callee): e for e in service_topology(tenant_id, *DAY)}
    assert set(edges) == {("web", "api"), ("api", "postgresql")}
    web_api = edges[("web", "api")]
    assert (web_api.calls, web_api.errors, web_api.instrumented) == (3, 1, True)
    assert web_api.mean_ns == pytest.approx(30 * MS)
    db_edge = edges[("api", "postgresql")]
    assert (db_edge.calls, db_edge.instrumented) == (2, False)
    assert db_edge.mean_ns == pytest.approx(5 * MS)


# --- log_volume_1m ------------------------------------------------------------------------------------------


def test_log_volume_per_service_severity_and_minute(
    tenant_id: str, insert_framed: Callable[..., int]
) -> None:
    req = ExportLogsServiceRequest()
    for service, records in {
        "api": [(T0, 9), (T0 + NS, 9), (T0 + 2 * NS, 17), (T0 + MINUTE, 13), (T0 + MINUTE, 0)],
        "worker": [(T0, 21)],
    }.items():
        rl = req.resource_logs.add()
        rl.resource.attributes.append(kv("service.name", service))
        scope = rl.scope_logs.add()
        for ts, severity in records:
            scope.log_records.add(time_unix_nano=ts, severity_number=severity).body.string_value = "x"
    insert_framed(Signal.LOGS, (tenant_id, req, 0))

    volume = {(v.minute_ns, v.service, v.severity): v.records for v in log_volume(tenant_id, *DAY)}
    assert volume == {
        (T0, "api", "INFO"): 2,
        (T0, "api", "ERROR"): 1,
        (T0 + MINUTE, "api", "WARN"): 1,
        (T0 + MINUTE, "api", "UNSPECIFIED"): 1,
        (T0, "worker", "FATAL"): 1,
    }
    assert {v.service for v in log_volume(tenant_id, *DAY, service="worker")} == {"worker"}


# --- metric_anomalies ---------------------------------------------------------------------------------------


def gauge_minute(minute: int, queue: float, latency: float) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", "worker"))
    sm = rm.scope_metrics.add()
    ts = T0 + minute * MINUTE + 10 * NS
    depth = sm.metrics.add(name="queue.depth")
    point = depth.gauge.data_points.add(time_unix_nano=ts, as_double=queue)
    point.attributes.append(kv("queue", "emails"))
    steady = sm.metrics.add(name="latency")
    steady.gauge.data_points.add(time_unix_nano=ts, as_double=latency)
    total = sm.metrics.add(name="jobs")
    total.sum.is_monotonic = True
    total.sum.aggregation_temporality = 2  # cumulative
    total.sum.data_points.add(time_unix_nano=ts, as_int=100 * minute + (900 if minute == 30 else 0))
    return req


def test_anomalies_are_z_scores_against_the_trailing_hour(
    tenant_id: str, insert_framed: Callable[..., int]
) -> None:
    for minute in range(30):  # one insert per minute, as exporters send them
        request = gauge_minute(minute, 10 + 2 * (minute % 2), 5.0 + minute % 2)
        insert_framed(Signal.METRICS, (tenant_id, request, 0))
    insert_framed(Signal.METRICS, (tenant_id, gauge_minute(30, 30, 5.5), 0))

    found = {a.metric: a for a in current_anomalies(tenant_id, T0 + 30 * MINUTE, T0 + 31 * MINUTE)}
    assert set(found) == {"queue.depth", "jobs"}  # latency stays within its usual range
    queue = found["queue.depth"]
    assert queue.mean == pytest.approx(11)  # 10, 12, 10, … over the 30 minutes before
    assert queue.stddev == pytest.approx(1)
    assert queue.z_score == pytest.approx(19)
    assert queue.value == 30
    assert queue.attributes == {"queue": "emails"}
    assert queue.minute_ns == T0 + 30 * MINUTE
    jobs = found["jobs"]  # a cumulative counter: compared by its increase per minute (100, then 1 000)
    assert jobs.value == 1000
    assert jobs.mean == 100
    assert jobs.stddev == 0
    assert jobs.z_score == pytest.approx(900)  # the deviation floor: 1 % of the mean
    assert current_anomalies(tenant_id, T0 + 10 * MINUTE, T0 + 29 * MINUTE) == []
