"""Log histogram (records per severity over time) for the log explorer."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from ollystack.telemetry import log_histogram
from ollystack.telemetry.api import reads
from ollystack.telemetry.api.access import ERRORS, ReadView, parse, tenant_id_for
from ollystack.telemetry.api.params import LogParams, TenantParam, attribute_filters, attribute_names
from ollystack.telemetry.api.views import ATTRIBUTE_PARAMETER
from ollystack.telemetry.cache import cached_read


class LogHistogramParams(LogParams):
    """The filters of the log search; no page size or cursor, a bucket width instead."""

    limit = None  # type: ignore[assignment]  # removes the inherited field
    cursor = None  # type: ignore[assignment]
    step = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Bucket width in seconds. Default: a round width giving about "
        f"{log_histogram.TARGET_BUCKETS} buckets. At most {log_histogram.MAX_BUCKETS} buckets; counts "
        "from the per-minute view (no text, attribute or trace filter) use whole minutes.",
    )


class SeverityCounts(serializers.Serializer):
    severity = serializers.ChoiceField(choices=log_histogram.SEVERITIES)
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="Records per bucket.")


class LogHistogramBody(serializers.Serializer):
    step_seconds = serializers.IntegerField(help_text="Bucket width.")
    times = serializers.ListField(
        child=serializers.IntegerField(), help_text="Bucket starts, Unix seconds, every bucket of the range."
    )
    series = SeverityCounts(
        many=True, help_text="One per severity class with records, TRACE first, UNSPECIFIED last."
    )
    source = serializers.ChoiceField(  # type: ignore[assignment]  # a field, popped by the metaclass
        choices=[log_histogram.VIEW, log_histogram.RAW],
        help_text="log_volume_1m: the per-minute view; logs: the records themselves.",
    )
    partial = serializers.BooleanField(  # type: ignore[assignment]  # a field, popped by the metaclass
        help_text=f"Only the newest {log_histogram.RAW_CAP} matching records were counted (source logs)."
    )


def histogram_json(result: log_histogram.Histogram) -> dict[str, Any]:
    return {
        "step_seconds": result.step_seconds,
        "times": result.times,
        "series": [{"severity": s, "counts": c} for s, c in result.counts.items()],
        "source": result.source,
        "partial": result.partial,
    }


class LogHistogramView(ReadView):
    @extend_schema(
        operation_id="logs_histogram",
        summary="Log records per severity over time (the filters of the log search)",
        parameters=[LogHistogramParams, ATTRIBUTE_PARAMETER, TenantParam],
        responses={200: LogHistogramBody, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(LogHistogramParams, request, attribute_names(request.query_params))
        attributes = attribute_filters(request.query_params)
        tenant_id = tenant_id_for(request)
        query = reads.log_query({**params, "limit": 1}, attributes)
        step = params.get("step")
        if step is not None:
            try:
                log_histogram.check_step(query.start_ns, query.end_ns, step)
            except ValueError as exc:
                raise exceptions.ValidationError({"step": str(exc)}) from None
        key = {
            **params["window"].key(),
            **{k: v for k, v in asdict(query).items() if k not in ("start_ns", "end_ns")},
            "step": step,
        }
        try:
            result = cached_read(
                tenant_id,
                "logs.histogram",
                key,
                lambda: log_histogram.log_histogram(tenant_id, query, step),
            )
        except ValueError as exc:
            raise exceptions.ValidationError({"query": str(exc)}) from None
        return Response(histogram_json(result))


urlpatterns: list[URLPattern] = [
    path("logs/histogram", LogHistogramView.as_view(), name="api-log-histogram"),
]
