"""Read API views: parse the query, call one read function for the caller's tenant, return JSON."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from ollystack.telemetry import metrics
from ollystack.telemetry.api import reads, responses
from ollystack.telemetry.api.access import ERRORS, ReadView, parse, tenant_id_for
from ollystack.telemetry.api.params import (
    HEX_ID_32,
    ErrorBody,
    ErrorParams,
    LogParams,
    MetricLabelParams,
    MetricParams,
    ServicesParams,
    TenantParam,
    TimeRangeParams,
    TraceSearchParams,
    attribute_filters,
    attribute_names,
)

ATTRIBUTE_PARAMETER = OpenApiParameter(
    "attr.<key>",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    description="Attribute filter, repeatable with different keys: attr.http.route=/checkout. Matches "
    "the span's (or the record's) or its resource's attribute; a number or true/false also matches an "
    "attribute sent with that type.",
)
NOT_FOUND = OpenApiResponse(ErrorBody, description="No such trace in this tenant.")


def _path_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.PATH, description=description)


class TraceView(ReadView):
    @extend_schema(
        operation_id="trace_get",
        summary="Every span of one trace",
        parameters=[_path_parameter("trace_id", "32 hexadecimal characters"), TenantParam],
        responses={200: responses.TraceBody, 404: NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, trace_id: str) -> Response:
        parse(TenantParam, request)
        tenant_id = tenant_id_for(request)
        if not HEX_ID_32.match(trace_id):
            raise exceptions.ValidationError(
                {"trace_id": f"{trace_id!r} is not a trace id; send 32 hexadecimal characters (16 bytes)"}
            )
        trace_id = trace_id.lower()
        spans = reads.trace_spans(tenant_id, trace_id)
        if not spans:
            raise exceptions.NotFound(
                f"no spans for trace {trace_id} in this tenant; it may not have arrived yet, "
                "have been sampled out or expired"
            )
        return Response({"traceId": trace_id, "spans": spans})


class TraceSearchView(ReadView):
    @extend_schema(
        operation_id="traces_search",
        summary="Search traces: the newest with a span matching every condition, summarized",
        parameters=[TraceSearchParams, ATTRIBUTE_PARAMETER, TenantParam],
        responses={200: responses.TraceSearchBody, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(TraceSearchParams, request, attribute_names(request.query_params))
        attributes = attribute_filters(request.query_params)
        tenant_id = tenant_id_for(request)
        query = reads.trace_query(params, attributes)
        summaries = reads.trace_summaries(tenant_id, query, params["window"])
        return Response({"traces": [responses.summary_json(s) for s in summaries]})


class ServicesView(ReadView):
    @extend_schema(
        operation_id="services_list",
        summary="Services seen in the time range, with request rate, error rate and latency (RED)",
        description="RED figures count requests entering each service (server, consumer and root spans); "
        "a service that only sent logs or metrics has zeros.",
        parameters=[ServicesParams, TenantParam],
        responses={200: responses.ServicesBody, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(ServicesParams, request)
        tenant_id = tenant_id_for(request)
        window = params["window"]
        rows = reads.service_list(tenant_id, window, params.get("service"))
        return Response({"services": [responses.red_json(row, window) for row in rows]})


class ServiceNamesView(ReadView):
    @extend_schema(
        operation_id="service_names_list",
        summary="Names of the services seen in the time range (spans, logs or metrics), without figures",
        parameters=[TimeRangeParams, TenantParam],
        responses={200: responses.ServiceNamesBody, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(TimeRangeParams, request)
        return Response({"services": reads.service_names(tenant_id_for(request), params["window"])})


class OperationsView(ReadView):
    @extend_schema(
        operation_id="service_operations_list",
        summary="Operations (span names) of one service, with RED figures over all their spans",
        parameters=[_path_parameter("service", "service.name"), TimeRangeParams, TenantParam],
        responses={200: responses.OperationsBody, **ERRORS},
    )
    def get(self, request: Request, service: str) -> Response:
        params = parse(TimeRangeParams, request)
        tenant_id = tenant_id_for(request)
        window = params["window"]
        rows = reads.operation_list(tenant_id, service, window)
        return Response(
            {
                "service": service,
                "operations": [responses.red_json(row, window, operation=True) for row in rows],
            }
        )


class LogsView(ReadView):
    @extend_schema(
        operation_id="logs_search",
        summary="Search log records, newest first",
        parameters=[LogParams, ATTRIBUTE_PARAMETER, TenantParam],
        responses={200: responses.LogsBody, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(LogParams, request, attribute_names(request.query_params))
        attributes = attribute_filters(request.query_params)
        tenant_id = tenant_id_for(request)
        query = reads.log_query(params, attributes)
        try:
            page = reads.log_page(tenant_id, query, params["window"])
        except ValueError as exc:
            raise exceptions.ValidationError({"cursor" if query.cursor else "query": str(exc)}) from None
        return Response({"records": page.records, "next_cursor": page.next_cursor})


class MetricsView(ReadView):
    @extend_schema(
        operation_id="metric_points_list",
        summary="Metric data points",
        parameters=[MetricParams, TenantParam],
        responses={200: responses.MetricPointsBody, **ERRORS},
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
        return Response({"points": reads.metric_points(tenant_id, query, params["window"])})


class MetricNamesView(ReadView):
    @extend_schema(
        operation_id="metric_names_list",
        summary="Metrics seen in the time range (name, type, unit, description)",
        parameters=[TimeRangeParams, TenantParam],
        responses={200: responses.MetricNamesBody, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(TimeRangeParams, request)
        tenant_id = tenant_id_for(request)
        return Response({"metrics": reads.metric_names(tenant_id, params["window"])})


class MetricLabelsView(ReadView):
    @extend_schema(
        operation_id="metric_labels_list",
        summary="Label names of metric points in the time range (point and resource attributes)",
        parameters=[MetricLabelParams, TenantParam],
        responses={200: responses.LabelsBody, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(MetricLabelParams, request)
        tenant_id = tenant_id_for(request)
        labels = reads.metric_labels(tenant_id, params["window"], params.get("name"))
        return Response({"labels": sorted(labels)})


class MetricLabelValuesView(ReadView):
    @extend_schema(
        operation_id="metric_label_values_list",
        summary="Values of one label in the time range (at most 1000, sorted)",
        parameters=[
            _path_parameter("label", "Label name, e.g. service.name"),
            MetricLabelParams,
            TenantParam,
        ],
        responses={200: responses.LabelValuesBody, **ERRORS},
    )
    def get(self, request: Request, label: str) -> Response:
        params = parse(MetricLabelParams, request)
        tenant_id = tenant_id_for(request)
        labels = reads.metric_labels(tenant_id, params["window"], params.get("name"), label)
        return Response({"label": label, "values": labels.get(label, [])})


class ErrorsView(ReadView):
    @extend_schema(
        operation_id="errors_list",
        summary="Errors grouped by service, exception type and message pattern, most frequent first",
        description="From the hourly error aggregates: the range is widened to whole hours.",
        parameters=[ErrorParams, TenantParam],
        responses={200: responses.ErrorsBody, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(ErrorParams, request)
        tenant_id = tenant_id_for(request)
        groups = reads.error_groups(tenant_id, params["window"], params.get("service"), params["limit"])
        return Response({"errors": [responses.error_json(group) for group in groups]})


class TopologyView(ReadView):
    @extend_schema(
        operation_id="topology_get",
        summary="The service map: who calls whom, with calls, errors and latency per edge",
        parameters=[TimeRangeParams, TenantParam],
        responses={200: responses.TopologyBody, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(TimeRangeParams, request)
        tenant_id = tenant_id_for(request)
        return Response(responses.topology_json(reads.topology_edges(tenant_id, params["window"])))
