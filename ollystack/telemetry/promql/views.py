"""Prometheus HTTP API views: GET or form POST (Grafana sends both), answers in Prometheus's JSON envelope.

Authentication and the tenant come from :class:`ollystack.telemetry.api.access.ReadView` (Bearer API key,
JWT or session); every error, including refused credentials, is Prometheus's
``{"status": "error", "errorType": ..., "error": ...}`` so that Grafana shows the message.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.http import QueryDict
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from ollystack.telemetry.api.access import ReadView, tenant_id_for
from ollystack.telemetry.cache import cached_read
from ollystack.telemetry.promql import query
from ollystack.telemetry.promql.errors import BadData, PromQLError
from ollystack.telemetry.promql.parse import parse_duration_ms, parse_time_ms

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120.0  # Prometheus's --query.timeout default
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_ERROR_TYPES = {400: "bad_data", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "bad_data"}
BUILD_INFO = {
    # Grafana reads the version to choose features; these are the ones the API behaves like.
    "version": "2.42.0",
    "revision": "ollystack",
    "branch": "",
    "buildUser": "",
    "buildDate": "",
    "goVersion": "",
}


def success(data: Any) -> Response:
    return Response({"status": "success", "data": data})


class PrometheusView(ReadView):
    """Parameters from the query string and, for POST, the form body; Prometheus-shaped errors."""

    def params(self, request: Request) -> QueryDict:
        merged = request.query_params.copy()
        if request.method == "POST" and isinstance(request.data, QueryDict):
            for key, values in request.data.lists():
                merged.setlist(key, merged.getlist(key) + values)
        return merged

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, PromQLError):
            return Response(
                {"status": "error", "errorType": exc.error_type, "error": exc.message}, status=exc.status
            )
        response = super().handle_exception(exc)
        message = response.data.get("error") if isinstance(response.data, dict) else str(response.data)
        response.data = {
            "status": "error",
            "errorType": _ERROR_TYPES.get(response.status_code, "internal"),
            "error": message,
        }
        return response

    def timeout(self, params: QueryDict) -> float:
        raw = params.get("timeout")
        if not raw:
            return DEFAULT_TIMEOUT_S
        return min(DEFAULT_TIMEOUT_S, parse_duration_ms(raw, "timeout") / 1000)

    @staticmethod
    def range(params: QueryDict) -> tuple[int | None, int | None]:
        start = parse_time_ms(str(params["start"]), "start") if params.get("start") else None
        end = parse_time_ms(str(params["end"]), "end") if params.get("end") else None
        return start, end


def _required(params: QueryDict, name: str) -> str:
    value = params.get(name)
    if not value:
        raise BadData(f'invalid parameter "{name}": missing')
    return value


class QueryView(PrometheusView):
    @extend_schema(summary="PromQL instant query (Prometheus HTTP API)", request=dict, responses={200: dict})
    def get(self, request: Request) -> Response:
        params = self.params(request)
        tenant_id = tenant_id_for(request)
        text = _required(params, "query")
        at = parse_time_ms(str(params["time"]), "time") if params.get("time") else query.now_ms()
        timeout = self.timeout(params)
        key = {"query": text, "time_ms": at, "end_ns": at * 1_000_000}
        return success(
            cached_read(
                tenant_id, "promql.query", key, lambda: query.instant_query(tenant_id, text, at, timeout)
            )
        )

    post = get


class QueryRangeView(PrometheusView):
    @extend_schema(summary="PromQL range query (Prometheus HTTP API)", request=dict, responses={200: dict})
    def get(self, request: Request) -> Response:
        params = self.params(request)
        tenant_id = tenant_id_for(request)
        text = _required(params, "query")
        start = parse_time_ms(_required(params, "start"), "start")
        end = parse_time_ms(_required(params, "end"), "end")
        step = parse_duration_ms(_required(params, "step"), "step")
        timeout = self.timeout(params)
        key = {"query": text, "start_ms": start, "end_ms": end, "step_ms": step, "end_ns": end * 1_000_000}
        return success(
            cached_read(
                tenant_id,
                "promql.query_range",
                key,
                lambda: query.range_query(tenant_id, text, start, end, step, timeout),
            )
        )

    post = get


class SeriesView(PrometheusView):
    @extend_schema(
        summary="Series matching selectors (Prometheus HTTP API)", request=dict, responses={200: dict}
    )
    def get(self, request: Request) -> Response:
        params = self.params(request)
        tenant_id = tenant_id_for(request)
        matches = params.getlist("match[]")
        if not matches:
            raise BadData("no match[] parameter provided")
        start, end = self.range(params)
        return success(query.find_series(tenant_id, matches, start, end))

    post = get


class LabelsView(PrometheusView):
    @extend_schema(summary="Label names (Prometheus HTTP API)", request=dict, responses={200: dict})
    def get(self, request: Request) -> Response:
        params = self.params(request)
        tenant_id = tenant_id_for(request)
        start, end = self.range(params)
        series = query.find_series(tenant_id, params.getlist("match[]"), start, end)
        return success(query.label_names(series))

    post = get


class LabelValuesView(PrometheusView):
    @extend_schema(summary="Values of one label (Prometheus HTTP API)", request=dict, responses={200: dict})
    def get(self, request: Request, name: str) -> Response:
        params = self.params(request)
        tenant_id = tenant_id_for(request)
        if not _LABEL_NAME.match(name):
            raise BadData(f"invalid label name: {name!r}")
        start, end = self.range(params)
        matches = params.getlist("match[]")
        if name == "__name__" and not matches:
            return success(query.metric_names(query.catalog(tenant_id, start, end)))
        series = query.find_series(tenant_id, matches, start, end)
        return success(query.label_values(series, name))


class MetadataView(PrometheusView):
    @extend_schema(summary="Metric metadata (Prometheus HTTP API)", request=dict, responses={200: dict})
    def get(self, request: Request) -> Response:
        params = self.params(request)
        tenant_id = tenant_id_for(request)
        limit = params.get("limit")
        try:
            limit_n = int(limit) if limit else None
        except ValueError:
            raise BadData('invalid parameter "limit": not a number') from None
        families = query.catalog(tenant_id)
        return success(query.metadata(families, params.get("metric") or None, limit_n))


class BuildInfoView(PrometheusView):
    @extend_schema(summary="Build information (Grafana probes it)", request=dict, responses={200: dict})
    def get(self, request: Request) -> Response:
        return success(BUILD_INFO)


class ExemplarsView(PrometheusView):
    @extend_schema(summary="Exemplars (none are served yet)", request=dict, responses={200: dict})
    def get(self, request: Request) -> Response:
        tenant_id_for(request)
        return success([])

    post = get
