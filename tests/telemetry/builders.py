"""OTLP requests that use every field and every AnyValue type, and their expected OTLP/JSON shape."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

NS = 1_000_000_000
BASE_NS = 1_700_000_000 * NS
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def every_value_kind() -> list[tuple[str, AnyValue]]:
    """One AnyValue of every type, including the awkward ones."""
    values: list[tuple[str, AnyValue]] = []

    def add(key: str, **kwargs: Any) -> AnyValue:
        value = AnyValue(**kwargs)
        values.append((key, value))
        return value

    add("str", string_value="hello wörld ✓")
    add("str.empty", string_value="")
    add("str.quote", string_value='it\'s a "quote" \\ back\nslash\ttab')
    add("bool.true", bool_value=True)
    add("bool.false", bool_value=False)
    add("int.zero", int_value=0)
    add("int.neg", int_value=-42)
    add("int.min", int_value=INT64_MIN)
    add("int.max", int_value=INT64_MAX)
    add("int.256", int_value=256)
    add("double.tenth", double_value=0.1)
    add("double.big", double_value=1e308)
    add("double.zero", double_value=0.0)
    add("double.negzero", double_value=-0.0)
    add("double.neg", double_value=-2.5e-300)
    add("double.inf", double_value=float("inf"))
    add("bytes", bytes_value=b"\x00\xff\x10binary\x00")
    add("bytes.empty", bytes_value=b"")
    add("array.empty").array_value.SetInParent()
    arr = add("array.mixed").array_value
    arr.values.add().string_value = "a"
    arr.values.add().int_value = -1
    arr.values.add().double_value = 0.1
    arr.values.add().bool_value = False
    arr.values.add().bytes_value = b"\x01"
    nested = arr.values.add().array_value
    nested.values.add().string_value = ""
    nested.values.add().kvlist_value.values.add(key="deep", value=AnyValue(int_value=INT64_MIN))
    kv = add("kvlist").kvlist_value
    kv.values.add(key="s", value=AnyValue(string_value="x"))
    kv.values.add(key="empty", value=AnyValue())
    kv.values.add(key="inner").value.kvlist_value.values.add(key="b", value=AnyValue(bytes_value=b"\xfe"))
    add("kvlist.empty").kvlist_value.SetInParent()
    add("empty.value")
    return values


def fill_attributes(target: Any, prefix: str = "") -> None:
    for key, value in every_value_kind():
        target.add(key=prefix + key, value=value)


def attrs_json(attributes: Any) -> list[dict[str, Any]]:
    return sorted(
        ({"key": kv.key, "value": MessageToDict(kv.value)} for kv in attributes), key=lambda a: a["key"]
    )


def full_trace_request(trace_id: bytes, service: str = "checkout") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.25.0")
    rs.resource.attributes.add(key="service.name").value.string_value = service
    fill_attributes(rs.resource.attributes, "res.")
    rs.resource.dropped_attributes_count = 3
    ss = rs.scope_spans.add(schema_url="https://scope.schema/1")
    ss.scope.name = "io.opentelemetry.test"
    ss.scope.version = "1.2.3"
    fill_attributes(ss.scope.attributes, "scope.")
    ss.scope.dropped_attributes_count = 4
    for i in range(3):
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = bytes([i + 1]) * 8
        span.parent_span_id = b"" if i == 0 else bytes([1]) * 8
        span.trace_state = "vendor=value,other=1" if i == 1 else ""
        span.flags = 0x101 if i == 1 else 1
        span.name = f"GET /items/{i}"
        span.kind = i + 1
        span.start_time_unix_nano = BASE_NS + i * 1000 + 1
        span.end_time_unix_nano = BASE_NS + i * 1000 + 999_999_937
        fill_attributes(span.attributes)
        span.dropped_attributes_count = 5
        event = span.events.add(time_unix_nano=BASE_NS + 7, name="exception", dropped_attributes_count=2)
        fill_attributes(event.attributes)
        span.events.add(time_unix_nano=BASE_NS + 8, name="empty")
        span.dropped_events_count = 6
        link = span.links.add(
            trace_id=b"\xab" * 16,
            span_id=b"\xcd" * 8,
            trace_state="l=1",
            flags=0x100,
            dropped_attributes_count=1,
        )
        fill_attributes(link.attributes)
        span.dropped_links_count = 7
        span.status.code = 2 if i == 2 else 0
        span.status.message = "boom" if i == 2 else ""
    return req


def expected_spans(req: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    out = []
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    {
                        "traceId": s.trace_id.hex(),
                        "spanId": s.span_id.hex(),
                        "parentSpanId": s.parent_span_id.hex(),
                        "traceState": s.trace_state,
                        "flags": s.flags,
                        "name": s.name,
                        "kind": int(s.kind),
                        "startTimeUnixNano": str(s.start_time_unix_nano),
                        "endTimeUnixNano": str(s.end_time_unix_nano),
                        "attributes": attrs_json(s.attributes),
                        "droppedAttributesCount": s.dropped_attributes_count,
                        "events": [
                            {
                                "timeUnixNano": str(e.time_unix_nano),
                                "name": e.name,
                                "attributes": attrs_json(e.attributes),
                                "droppedAttributesCount": e.dropped_attributes_count,
                            }
                            for e in s.events
                        ],
                        "droppedEventsCount": s.dropped_events_count,
                        "links": [
                            {
                                "traceId": lk.trace_id.hex(),
                                "spanId": lk.span_id.hex(),
                                "traceState": lk.trace_state,
                                "flags": lk.flags,
                                "attributes": attrs_json(lk.attributes),
                                "droppedAttributesCount": lk.dropped_attributes_count,
                            }
                            for lk in s.links
                        ],
                        "droppedLinksCount": s.dropped_links_count,
                        "status": {"code": int(s.status.code), "message": s.status.message},
                        **expected_resource_scope(rs, ss),
                    }
                )
    return out


def expected_resource_scope(rs: Any, ss: Any) -> dict[str, Any]:
    service = next((kv.value.string_value for kv in rs.resource.attributes if kv.key == "service.name"), "")
    return {
        "resource": {
            "attributes": attrs_json(rs.resource.attributes),
            "droppedAttributesCount": rs.resource.dropped_attributes_count,
        },
        "resourceSchemaUrl": rs.schema_url,
        "scope": {
            "name": ss.scope.name,
            "version": ss.scope.version,
            "attributes": attrs_json(ss.scope.attributes),
            "droppedAttributesCount": ss.scope.dropped_attributes_count,
        },
        "scopeSchemaUrl": ss.schema_url,
        "serviceName": service,
    }


def full_logs_request(service: str = "checkout") -> ExportLogsServiceRequest:
    """One log record per body kind, every field set."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add(schema_url="https://opentelemetry.io/schemas/1.25.0")
    rl.resource.attributes.add(key="service.name").value.string_value = service
    fill_attributes(rl.resource.attributes, "res.")
    rl.resource.dropped_attributes_count = 1
    sl = rl.scope_logs.add(schema_url="https://scope/logs")
    sl.scope.name = "logger"
    sl.scope.version = "0.1"
    fill_attributes(sl.scope.attributes)
    sl.scope.dropped_attributes_count = 2
    for i, (_key, body) in enumerate(every_value_kind()):
        rec = sl.log_records.add()
        rec.time_unix_nano = BASE_NS + i * NS
        rec.observed_time_unix_nano = BASE_NS + i * NS + 5
        rec.severity_number = 1 + i % 24
        rec.severity_text = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"][i % 5]
        rec.body.CopyFrom(body)
        fill_attributes(rec.attributes)
        rec.dropped_attributes_count = i
        rec.flags = 1
        rec.trace_id = bytes([i + 1]) * 16
        rec.span_id = bytes([i + 1]) * 8
        rec.event_name = "app.event" if i % 2 else ""
    return req


def expected_logs(req: ExportLogsServiceRequest) -> list[dict[str, Any]]:
    out = []
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append(
                    {
                        "timeUnixNano": str(r.time_unix_nano),
                        "observedTimeUnixNano": str(r.observed_time_unix_nano),
                        "severityNumber": int(r.severity_number),
                        "severityText": r.severity_text,
                        "body": MessageToDict(r.body),
                        "attributes": attrs_json(r.attributes),
                        "droppedAttributesCount": r.dropped_attributes_count,
                        "flags": r.flags,
                        "traceId": r.trace_id.hex(),
                        "spanId": r.span_id.hex(),
                        "eventName": r.event_name,
                        **expected_resource_scope(rl, sl),
                    }
                )
    return out


def full_metrics_request(service: str = "checkout") -> ExportMetricsServiceRequest:
    """All five metric kinds with every point field."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add(schema_url="https://opentelemetry.io/schemas/1.25.0")
    rm.resource.attributes.add(key="service.name").value.string_value = service
    sm = rm.scope_metrics.add(schema_url="https://scope/metrics")
    sm.scope.name = "meter"
    sm.scope.version = "9"

    def point_common(p: Any, i: int) -> None:
        fill_attributes(p.attributes)
        p.start_time_unix_nano = BASE_NS - NS
        p.time_unix_nano = BASE_NS + i
        p.flags = 1

    def exemplar(p: Any, as_int: bool) -> None:
        ex = p.exemplars.add(time_unix_nano=BASE_NS + 3, span_id=b"\x01" * 8, trace_id=b"\x02" * 16)
        if as_int:
            ex.as_int = INT64_MIN
        else:
            ex.as_double = 0.1
        ex.filtered_attributes.add(key="user", value=AnyValue(int_value=7))

    gauge = sm.metrics.add(name="queue.depth", description="items waiting", unit="{item}")
    gauge.metadata.add(key="meta", value=AnyValue(string_value="m"))
    p = gauge.gauge.data_points.add(as_double=1e308)
    point_common(p, 0)
    exemplar(p, as_int=True)
    p = gauge.gauge.data_points.add(as_int=INT64_MAX)
    point_common(p, 1)
    s = sm.metrics.add(name="requests", description="count", unit="1")
    s.sum.aggregation_temporality = 2
    s.sum.is_monotonic = True
    p = s.sum.data_points.add(as_int=-5)
    point_common(p, 2)
    exemplar(p, as_int=False)
    h = sm.metrics.add(name="latency", unit="ms")
    h.histogram.aggregation_temporality = 1
    hp = h.histogram.data_points.add(
        count=2**64 - 1, sum=0.1, bucket_counts=[1, 0, 2**63], explicit_bounds=[0.5, 1e308], min=-1.0, max=0.0
    )
    point_common(hp, 3)
    exemplar(hp, as_int=False)
    hp2 = h.histogram.data_points.add(count=0)
    point_common(hp2, 4)
    e = sm.metrics.add(name="latency.exp", unit="s")
    e.exponential_histogram.aggregation_temporality = 2
    ep = e.exponential_histogram.data_points.add(
        count=10, sum=2.5, scale=-3, zero_count=2, zero_threshold=1e-9, min=0.001, max=9.5
    )
    ep.positive.offset = -2
    ep.positive.bucket_counts.extend([1, 2, 3])
    ep.negative.offset = 5
    ep.negative.bucket_counts.extend([4])
    point_common(ep, 5)
    sm_ = sm.metrics.add(name="gc.pause", unit="s")
    sp = sm_.summary.data_points.add(count=3, sum=0.0)
    sp.quantile_values.add(quantile=0.0, value=0.1)
    sp.quantile_values.add(quantile=0.99, value=1e308)
    point_common(sp, 6)
    return req


_KIND_JSON = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponential_histogram": "exponentialHistogram",
    "summary": "summary",
}


def expected_points(req: ExportMetricsServiceRequest) -> list[dict[str, Any]]:
    """One dict per point: MessageToDict of the point plus metric and resource/scope fields."""
    out = []
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                data = getattr(m, kind)
                for p in data.data_points:
                    d = MessageToDict(p)
                    d["attributes"] = attrs_json(p.attributes)
                    d["flags"] = p.flags
                    d.setdefault("startTimeUnixNano", "0")
                    d.setdefault("timeUnixNano", "0")
                    if kind != "summary":
                        d["exemplars"] = [
                            {
                                **MessageToDict(ex),
                                "filteredAttributes": attrs_json(ex.filtered_attributes),
                                "timeUnixNano": str(ex.time_unix_nano),
                                "spanId": ex.span_id.hex(),
                                "traceId": ex.trace_id.hex(),
                            }
                            for ex in p.exemplars
                        ]
                    if kind in ("histogram", "exponential_histogram", "summary"):
                        d["count"] = str(p.count)
                    if kind == "summary":
                        d["sum"] = p.sum
                        d["quantileValues"] = [
                            {"quantile": q.quantile, "value": q.value} for q in p.quantile_values
                        ]
                    if kind == "histogram":
                        d["bucketCounts"] = [str(c) for c in p.bucket_counts]
                        d["explicitBounds"] = list(p.explicit_bounds)
                    if kind == "exponential_histogram":
                        d["scale"] = p.scale
                        d["zeroCount"] = str(p.zero_count)
                        d["zeroThreshold"] = p.zero_threshold
                        d["positive"] = {
                            "offset": p.positive.offset,
                            "bucketCounts": [str(c) for c in p.positive.bucket_counts],
                        }
                        d["negative"] = {
                            "offset": p.negative.offset,
                            "bucketCounts": [str(c) for c in p.negative.bucket_counts],
                        }
                    if kind in ("sum", "histogram", "exponential_histogram"):
                        d["aggregationTemporality"] = int(data.aggregation_temporality)
                    if kind == "sum":
                        d["isMonotonic"] = data.is_monotonic
                    d.update(
                        {
                            "name": m.name,
                            "description": m.description,
                            "unit": m.unit,
                            "metadata": attrs_json(m.metadata),
                            "type": _KIND_JSON[kind],
                            **expected_resource_scope(rm, sm),
                        }
                    )
                    out.append(d)
    return out
