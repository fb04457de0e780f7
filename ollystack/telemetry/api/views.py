"""Read API views: parse the query, call one read function for the caller's tenant, return JSON."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from ollystack.telemetry import logs, metrics, services, traces
from ollystack.telemetry.api.access import ERRORS, ReadView, parse, tenant_id_for
from ollystack.telemetry.api.params import (
    HEX_ID_32,
    ErrorBody,
    LogParams,
    MetricParams,
    TenantParam,
    TimeRangeParams,
)


class TraceView(ReadView):
    @extend_schema(
        summary="Every span of one trace",
        parameters=[
            OpenApiParameter("trace_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="32 hex chars"),
            TenantParam,
        ],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(ErrorBody), **ERRORS},
    )
    def get(self, request: Request, trace_id: str) -> Response:
        parse(TenantParam, request)
        tenant_id = tenant_id_for(request)
        if not HEX_ID_32.match(trace_id):
            raise exceptions.ValidationError(
                {"trace_id": f"{trace_id!r} is not a trace id; send 32 hexadecimal characters (16 bytes)"}
            )
        trace_id = trace_id.lower()
        try:
            spans = traces.get_trace(tenant_id, trace_id)
        except ValueError as exc:
            raise exceptions.ValidationError({"trace_id": str(exc)}) from None
        if not spans:
            raise exceptions.NotFound(
                f"no spans for trace {trace_id} in this tenant; it may not have arrived yet, "
                "have been sampled out or expired"
            )
        return Response({"traceId": trace_id, "spans": spans})


class ServicesView(ReadView):
    @extend_schema(
        summary="Service names seen in the time range",
        parameters=[TimeRangeParams, TenantParam],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(TimeRangeParams, request)
        tenant_id = tenant_id_for(request)
        names = services.list_services(tenant_id, params["start_ns"], params["end_ns"])
        return Response({"services": names})


class LogsView(ReadView):
    @extend_schema(
        summary="Search log records, newest first",
        parameters=[LogParams, TenantParam],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(LogParams, request)
        tenant_id = tenant_id_for(request)
        query = logs.LogQuery(
            start_ns=params["start_ns"],
            end_ns=params["end_ns"],
            service=params.get("service"),
            severity_min=params.get("severity"),
            severity_text=None,
            text=params.get("text"),
            trace_id=params.get("trace_id"),
            limit=params["limit"],
            cursor=params.get("cursor"),
        )
        try:
            page = logs.search_logs(tenant_id, query)
        except ValueError as exc:
            raise exceptions.ValidationError({"cursor" if query.cursor else "query": str(exc)}) from None
        return Response({"records": page.records, "next_cursor": page.next_cursor})


class MetricsView(ReadView):
    @extend_schema(
        summary="Metric data points",
        parameters=[MetricParams, TenantParam],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(MetricParams, request)
        tenant_id = tenant_id_for(request)
        query = metrics.MetricQuery(
            name=params.get("name"),
            service=params.get("service"),
            start_ns=params["start_ns"],
            end_ns=params["end_ns"],
            limit=params["limit"],
        )
        points = metrics.list_metric_points(tenant_id, query)
        return Response({"points": points})


class MetricNamesView(ReadView):
    @extend_schema(
        summary="Metrics seen in the time range (name, type, unit, description)",
        parameters=[TimeRangeParams, TenantParam],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(TimeRangeParams, request)
        tenant_id = tenant_id_for(request)
        names = metrics.list_metric_names(tenant_id, params["start_ns"], params["end_ns"])
        return Response({"metrics": names})
