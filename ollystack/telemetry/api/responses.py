"""JSON shapes of the REST read API: the formatting of read results, and serializers that document it.

Nanosecond times are decimal strings (``*_unix_nano``, as in OTLP/JSON: JavaScript numbers lose digits
beyond 2^53); durations in nanoseconds are numbers; counts are sums of sampling weights (estimates of what
was sent), so they may be fractional.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ollystack.telemetry.api.params import Window
from ollystack.telemetry.errors import ErrorGroup
from ollystack.telemetry.services import Red
from ollystack.telemetry.topology import Edge
from ollystack.telemetry.trace_search import TraceSummary


def red_json(red: Red, window: Window, operation: bool = False) -> dict[str, Any]:
    seconds = window.seconds
    out: dict[str, Any] = {"service": red.service}
    if operation:
        out["operation"] = red.operation
    out.update(
        requests=red.requests,
        request_rate=red.requests / seconds if seconds > 0 else 0.0,
        errors=red.errors,
        error_rate=red.error_rate,
        duration_ns={
            "mean": red.mean_ns,
            "p50": red.p50_ns,
            "p90": red.p90_ns,
            "p95": red.p95_ns,
            "p99": red.p99_ns,
        },
    )
    return out


def summary_json(summary: TraceSummary) -> dict[str, Any]:
    return {
        "trace_id": summary.trace_id,
        "root_service": summary.root_service,
        "root_operation": summary.root_operation,
        "start_time_unix_nano": str(summary.start_ns),
        "duration_ns": summary.duration_ns,
        "span_count": summary.span_count,
        "error_count": summary.error_count,
        "services": list(summary.services),
    }


def error_json(group: ErrorGroup) -> dict[str, Any]:
    return {
        "service": group.service,
        "exception_type": group.exception_type,
        "fingerprint": str(group.fingerprint),
        "pattern": group.pattern,
        "count": group.count,
        "first_seen_unix_nano": str(group.first_seen_ns),
        "last_seen_unix_nano": str(group.last_seen_ns),
        "example_message": group.example_message,
        "example_trace_id": group.example_trace_id,
        "example_span_id": group.example_span_id,
    }


def topology_json(edges: list[Edge]) -> dict[str, Any]:
    """Edges, and the services they connect (``instrumented``: the service sends its own telemetry)."""
    nodes: dict[str, bool] = {}
    for edge in edges:
        nodes[edge.caller] = True
        nodes[edge.callee] = nodes.get(edge.callee, False) or edge.instrumented
    return {
        "nodes": [{"service": name, "instrumented": nodes[name]} for name in sorted(nodes)],
        "edges": [
            {
                "caller": edge.caller,
                "callee": edge.callee,
                "instrumented": edge.instrumented,
                "calls": edge.calls,
                "errors": edge.errors,
                "error_rate": edge.errors / edge.calls if edge.calls else 0.0,
                "duration_ns": {
                    "mean": edge.mean_ns,
                    "p50": edge.p50_ns,
                    "p95": edge.p95_ns,
                    "p99": edge.p99_ns,
                },
            }
            for edge in edges
        ],
    }


# --- serializers: the OpenAPI description of the shapes above ------------------------------------------


class Quantiles(serializers.Serializer):
    mean = serializers.FloatField()
    p50 = serializers.FloatField()
    p90 = serializers.FloatField(required=False, help_text="Not on topology edges.")
    p95 = serializers.FloatField()
    p99 = serializers.FloatField()


class RedBody(serializers.Serializer):
    service = serializers.CharField()
    requests = serializers.FloatField(help_text="Requests entering the service (sum of sampling weights).")
    request_rate = serializers.FloatField(help_text="Requests per second over the range.")
    errors = serializers.FloatField(help_text="Requests whose entry span has status ERROR.")  # type: ignore[assignment]  # a field, popped by the metaclass
    error_rate = serializers.FloatField(help_text="errors / requests (0 without requests).")
    duration_ns = Quantiles(help_text="Latency of the entry spans, nanoseconds.")


class ServicesBody(serializers.Serializer):
    services = RedBody(many=True)


class ServiceNamesBody(serializers.Serializer):
    services = serializers.ListField(child=serializers.CharField(), help_text="service.name values, sorted.")


class OperationRedBody(RedBody):
    operation = serializers.CharField(help_text="Span name.")


class OperationsBody(serializers.Serializer):
    service = serializers.CharField()
    operations = OperationRedBody(many=True)


class TraceSummaryBody(serializers.Serializer):
    trace_id = serializers.CharField(help_text="32 hexadecimal characters.")
    root_service = serializers.CharField(help_text="Of the root span; of the earliest span without one.")
    root_operation = serializers.CharField()
    start_time_unix_nano = serializers.CharField(help_text="Start of the earliest span, ns (decimal).")
    duration_ns = serializers.IntegerField(help_text="From the first span's start to the last span's end.")
    span_count = serializers.IntegerField()
    error_count = serializers.IntegerField(help_text="Spans with status ERROR.")
    services = serializers.ListField(child=serializers.CharField())


class TraceSearchBody(serializers.Serializer):
    traces = TraceSummaryBody(many=True)


class TraceBody(serializers.Serializer):
    traceId = serializers.CharField()  # OTLP/JSON spelling
    spans = serializers.ListField(child=serializers.DictField(), help_text="Spans in OTLP/JSON shape.")


class LogsBody(serializers.Serializer):
    records = serializers.ListField(child=serializers.DictField(), help_text="Log records, OTLP/JSON shape.")
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass as cursor for older records.")


class MetricPointsBody(serializers.Serializer):
    points = serializers.ListField(child=serializers.DictField(), help_text="Data points, OTLP/JSON shape.")


class MetricNameBody(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(help_text="gauge, sum, histogram, exponentialHistogram or summary.")
    description = serializers.CharField()
    unit = serializers.CharField()
    points = serializers.IntegerField()
    services = serializers.ListField(child=serializers.CharField())


class MetricNamesBody(serializers.Serializer):
    metrics = MetricNameBody(many=True)


class LabelsBody(serializers.Serializer):
    labels = serializers.ListField(child=serializers.CharField())


class LabelValuesBody(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # a field, popped by the metaclass
    values = serializers.ListField(child=serializers.CharField())


class ErrorGroupBody(serializers.Serializer):
    service = serializers.CharField()
    exception_type = serializers.CharField()
    fingerprint = serializers.CharField(help_text="Of the message pattern (UInt64, decimal).")
    pattern = serializers.CharField(help_text="The message with numbers, UUIDs and hex ids collapsed.")
    count = serializers.FloatField()
    first_seen_unix_nano = serializers.CharField()
    last_seen_unix_nano = serializers.CharField()
    example_message = serializers.CharField()
    example_trace_id = serializers.CharField()
    example_span_id = serializers.CharField()


class ErrorsBody(serializers.Serializer):
    errors = ErrorGroupBody(many=True)  # type: ignore[assignment]  # a field, popped by the metaclass


class TopologyNodeBody(serializers.Serializer):
    service = serializers.CharField()
    instrumented = serializers.BooleanField(
        help_text="False: known only from its callers' client spans (a database, an external API)."
    )


class TopologyEdgeBody(serializers.Serializer):
    caller = serializers.CharField()
    callee = serializers.CharField()
    instrumented = serializers.BooleanField()
    calls = serializers.FloatField()
    errors = serializers.FloatField()  # type: ignore[assignment]  # a field, popped by the metaclass
    error_rate = serializers.FloatField()
    duration_ns = Quantiles()


class TopologyBody(serializers.Serializer):
    nodes = TopologyNodeBody(many=True)
    edges = TopologyEdgeBody(many=True)
