"""A trace for its waterfall, and one span of it: what the trace page reads.

``GET traces/<trace_id>/waterfall`` places every span (ids, name, service, kind, times, status);
``GET traces/<trace_id>/spans/<span_id>`` is one span with its attributes, events, links and resource,
fetched when it is opened. Both are reads (viewer and up, or a key with the read scope).
"""

from __future__ import annotations

import re

from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from ollystack.telemetry import trace_waterfall
from ollystack.telemetry.api.access import ERRORS, ReadView, parse, tenant_id_for
from ollystack.telemetry.api.params import HEX_ID_32, ErrorBody, TenantParam
from ollystack.telemetry.cache import cached_read

HEX_ID_16 = re.compile(r"^[0-9a-fA-F]{16}$")
NOT_FOUND = OpenApiResponse(ErrorBody, description="No such trace (or span) in this tenant.")


def _path(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.PATH, description=description)


def _trace_id(raw: str) -> str:
    if not HEX_ID_32.match(raw):
        raise exceptions.ValidationError(
            {"trace_id": f"{raw!r} is not a trace id; send 32 hexadecimal characters (16 bytes)"}
        )
    return raw.lower()


def _missing_trace(trace_id: str) -> exceptions.NotFound:
    return exceptions.NotFound(
        f"no spans for trace {trace_id} in this tenant; it may not have arrived yet, "
        "have been sampled out or expired"
    )


class WaterfallSpanBody(serializers.Serializer):
    spanId = serializers.CharField()
    parentSpanId = serializers.CharField(help_text="Empty for a root span.")
    name = serializers.CharField()
    serviceName = serializers.CharField()
    kind = serializers.IntegerField(help_text="OTLP SpanKind number (2 server, 3 client, …).")
    startTimeUnixNano = serializers.CharField(help_text="Decimal nanoseconds.")
    endTimeUnixNano = serializers.CharField(help_text="Decimal nanoseconds.")
    status = serializers.DictField(help_text="{code (0 unset, 1 ok, 2 error), message}")


class WaterfallBody(serializers.Serializer):
    traceId = serializers.CharField()  # OTLP/JSON spelling
    spans = WaterfallSpanBody(many=True)
    truncated = serializers.BooleanField(
        help_text=f"The trace has more than {trace_waterfall.MAX_SPANS} spans; the earliest are listed."
    )


class TraceWaterfallView(ReadView):
    @extend_schema(
        operation_id="trace_waterfall",
        summary="Every span of one trace, placement fields only (ids, name, service, times, status)",
        parameters=[_path("trace_id", "32 hexadecimal characters"), TenantParam],
        responses={200: WaterfallBody, 404: NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, trace_id: str) -> Response:
        parse(TenantParam, request)
        tenant_id = tenant_id_for(request)
        trace_id = _trace_id(trace_id)
        found = cached_read(
            tenant_id,
            "traces.waterfall",
            {"trace_id": trace_id},
            lambda: trace_waterfall.waterfall(tenant_id, trace_id),
        )
        if not found.spans:
            raise _missing_trace(trace_id)
        return Response({"traceId": trace_id, "spans": found.spans, "truncated": found.truncated})


class SpanView(ReadView):
    @extend_schema(
        operation_id="trace_span_get",
        summary="One span of a trace with its attributes, events, links, resource and scope",
        parameters=[
            _path("trace_id", "32 hexadecimal characters"),
            _path("span_id", "16 hexadecimal characters"),
            TenantParam,
        ],
        responses={
            200: OpenApiResponse(description="The span in OTLP/JSON shape."),
            404: NOT_FOUND,
            **ERRORS,
        },
    )
    def get(self, request: Request, trace_id: str, span_id: str) -> Response:
        parse(TenantParam, request)
        tenant_id = tenant_id_for(request)
        trace_id = _trace_id(trace_id)
        if not HEX_ID_16.match(span_id):
            raise exceptions.ValidationError(
                {"span_id": f"{span_id!r} is not a span id; send 16 hexadecimal characters (8 bytes)"}
            )
        span_id = span_id.lower()
        span = cached_read(
            tenant_id,
            "traces.span",
            {"trace_id": trace_id, "span_id": span_id},
            lambda: trace_waterfall.get_span(tenant_id, trace_id, span_id),
        )
        if span is None:
            raise exceptions.NotFound(f"no span {span_id} in trace {trace_id} in this tenant")
        return Response(span)


urlpatterns: list[URLPattern] = [
    path("traces/<str:trace_id>/waterfall", TraceWaterfallView.as_view(), name="api-trace-waterfall"),
    path("traces/<str:trace_id>/spans/<str:span_id>", SpanView.as_view(), name="api-trace-span"),
]
