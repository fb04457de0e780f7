"""RED time series of services and operations (sparklines, per-operation charts), and a service's slowest
requests.

Series come in buckets whose step the server chooses from the range (at most 120 buckets); ``times`` are
the buckets' starts in Unix seconds. Rates divide by the seconds of the bucket the data covers, so the
bucket still in progress is not under-counted. Latencies are ``null`` in buckets without requests.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from ollystack.telemetry import red_series
from ollystack.telemetry.api.access import ERRORS, ReadView, parse, tenant_id_for
from ollystack.telemetry.api.params import TenantParam, TimeRangeParams, Window
from ollystack.telemetry.cache import cached_read

SERVICE_PARAMETER = OpenApiParameter(
    "service", OpenApiTypes.STR, OpenApiParameter.PATH, description="service.name"
)


class OperationSeriesParams(TimeRangeParams):
    top = serializers.IntegerField(
        required=False,
        default=red_series.DEFAULT_TOP_OPERATIONS,
        min_value=1,
        max_value=red_series.MAX_TOP_OPERATIONS,
        help_text="How many operations, those with the most requests in the range "
        f"(1-{red_series.MAX_TOP_OPERATIONS}).",
    )


class SlowestParams(TimeRangeParams):
    limit = serializers.IntegerField(
        required=False,
        default=10,
        min_value=1,
        max_value=red_series.MAX_SLOWEST,
        help_text=f"Most requests returned (1-{red_series.MAX_SLOWEST}).",
    )


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def series_json(series: red_series.RedSeries, buckets: red_series.Buckets) -> dict[str, Any]:
    return {
        "requests": list(series.requests),
        "request_rate": [r / s for r, s in zip(series.requests, buckets.covered_s, strict=True)],
        "errors": list(series.errors),
        "error_rate": [_ratio(e, r) for e, r in zip(series.errors, series.requests, strict=True)],
        "duration_ns": {"p50": list(series.p50_ns), "p95": list(series.p95_ns), "p99": list(series.p99_ns)},
    }


def _empty(key: str, buckets: red_series.Buckets) -> red_series.RedSeries:
    zeros, nones = (0.0,) * buckets.count, (None,) * buckets.count
    return red_series.RedSeries(key, zeros, zeros, nones, nones, nones)


def _frame(buckets: red_series.Buckets) -> dict[str, Any]:
    return {"step": buckets.step_s, "times": buckets.times()}


def _key(window: Window, **extra: object) -> dict[str, object]:
    return {**window.key(), **extra}


# --- OpenAPI description of the shapes ------------------------------------------------------------------


class QuantileSeriesBody(serializers.Serializer):
    p50 = serializers.ListField(child=serializers.FloatField(allow_null=True))
    p95 = serializers.ListField(child=serializers.FloatField(allow_null=True))
    p99 = serializers.ListField(child=serializers.FloatField(allow_null=True))


class RedSeriesBody(serializers.Serializer):
    requests = serializers.ListField(
        child=serializers.FloatField(), help_text="Requests per bucket (sum of sampling weights)."
    )
    request_rate = serializers.ListField(child=serializers.FloatField(), help_text="Requests per second.")
    errors = serializers.ListField(child=serializers.FloatField(), help_text="Requests with status ERROR.")  # type: ignore[assignment]  # a field, popped by the metaclass
    error_rate = serializers.ListField(
        child=serializers.FloatField(allow_null=True), help_text="errors / requests (null without requests)."
    )
    duration_ns = QuantileSeriesBody(help_text="Latency quantiles per bucket, nanoseconds.")


class ServiceRedSeriesBody(RedSeriesBody):
    service = serializers.CharField()


class OperationRedSeriesBody(RedSeriesBody):
    operation = serializers.CharField(help_text="Span name.")


class SeriesFrameBody(serializers.Serializer):
    step = serializers.IntegerField(help_text="Seconds per bucket.")
    times = serializers.ListField(child=serializers.IntegerField(), help_text="Bucket starts, Unix seconds.")


class ServicesSeriesBody(SeriesFrameBody):
    services = ServiceRedSeriesBody(many=True)


class ServiceSeriesBody(SeriesFrameBody):
    service = serializers.CharField()
    total = RedSeriesBody(help_text="Requests entering the service (server, consumer and root spans).")
    operations = OperationRedSeriesBody(many=True, help_text="Busiest first, over all their spans.")


class SlowRequestBody(serializers.Serializer):
    trace_id = serializers.CharField(help_text="32 hexadecimal characters.")
    span_id = serializers.CharField()
    operation = serializers.CharField()
    start_time_unix_nano = serializers.CharField(help_text="Decimal string.")
    duration_ns = serializers.IntegerField()
    error = serializers.BooleanField(help_text="The span's status is ERROR.")


class SlowestBody(serializers.Serializer):
    service = serializers.CharField()
    requests = SlowRequestBody(many=True)


# --- views ------------------------------------------------------------------------------------------------


class ServicesSeriesView(ReadView):
    @extend_schema(
        operation_id="services_series",
        summary="RED of every service over time: request rate, error rate and latency per bucket",
        description="Counted on requests entering each service (server, consumer and root spans). Ranges "
        "up to 15 minutes that start within the last two days are read from the per-second aggregates "
        "(steps of 5 or 10 s), others from the per-minute ones; services without requests in the range "
        "are left out. Sorted by service name.",
        parameters=[TimeRangeParams, TenantParam],
        responses={200: ServicesSeriesBody, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(TimeRangeParams, request)
        tenant_id = tenant_id_for(request)
        window: Window = params["window"]
        result = cached_read(
            tenant_id,
            "services.series",
            _key(window),
            lambda: red_series.service_series(tenant_id, window.start_ns, window.end_ns),
        )
        services = sorted(result.series, key=lambda s: s.key)
        return Response(
            {
                **_frame(result.buckets),
                "services": [{"service": s.key, **series_json(s, result.buckets)} for s in services],
            }
        )


class ServiceSeriesView(ReadView):
    @extend_schema(
        operation_id="service_series",
        summary="RED of one service over time, in total and for its busiest operations",
        parameters=[SERVICE_PARAMETER, OperationSeriesParams, TenantParam],
        responses={200: ServiceSeriesBody, **ERRORS},
    )
    def get(self, request: Request, service: str) -> Response:
        params = parse(OperationSeriesParams, request)
        tenant_id = tenant_id_for(request)
        window: Window = params["window"]

        def compute() -> tuple[red_series.SeriesSet, red_series.SeriesSet]:
            start, end = window.start_ns, window.end_ns
            total = red_series.service_series(tenant_id, start, end, service=service)
            operations = red_series.operation_series(tenant_id, service, start, end, top=params["top"])
            return total, operations

        total, operations = cached_read(
            tenant_id, "services.service_series", _key(window, service=service, top=params["top"]), compute
        )
        buckets = total.buckets
        return Response(
            {
                **_frame(buckets),
                "service": service,
                "total": series_json(total.series[0] if total.series else _empty(service, buckets), buckets),
                "operations": [
                    {"operation": s.key, **series_json(s, operations.buckets)} for s in operations.series
                ],
            }
        )


class SlowestView(ReadView):
    @extend_schema(
        operation_id="service_slowest",
        summary="The longest requests a service served in the range, one per trace, longest first",
        description="Requests are the service's server, consumer and root spans that started in the range.",
        parameters=[SERVICE_PARAMETER, SlowestParams, TenantParam],
        responses={200: SlowestBody, **ERRORS},
    )
    def get(self, request: Request, service: str) -> Response:
        params = parse(SlowestParams, request)
        tenant_id = tenant_id_for(request)
        window: Window = params["window"]
        slow = cached_read(
            tenant_id,
            "services.slowest",
            _key(window, service=service, limit=params["limit"]),
            lambda: red_series.slowest_requests(
                tenant_id, service, window.start_ns, window.end_ns, params["limit"]
            ),
        )
        return Response(
            {
                "service": service,
                "requests": [
                    {
                        "trace_id": s.trace_id,
                        "span_id": s.span_id,
                        "operation": s.operation,
                        "start_time_unix_nano": str(s.start_ns),
                        "duration_ns": s.duration_ns,
                        "error": s.error,
                    }
                    for s in slow
                ],
            }
        )


urlpatterns: list[URLPattern] = [
    path("services/series", ServicesSeriesView.as_view(), name="api-services-series"),
    path("services/<str:service>/series", ServiceSeriesView.as_view(), name="api-service-series"),
    path("services/<str:service>/slowest", SlowestView.as_view(), name="api-service-slowest"),
]
