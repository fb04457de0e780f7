"""The questions the REST API and GraphQL answer: one function each, cached per tenant and query.

Both entry points validate their input with the same serializers (``params``) and call these, so a
question asked over REST and over GraphQL is the same cache entry and the same SQL.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ollystack.telemetry import errors, logs, metrics, services, topology, trace_search, traces
from ollystack.telemetry.api.params import Window
from ollystack.telemetry.cache import cached_read


def _key(window: Window, query: Any = None, **extra: object) -> dict[str, object]:
    """The range as asked plus the query's own fields (its resolved range left out)."""
    fields = {k: v for k, v in asdict(query).items() if k not in ("start_ns", "end_ns")} if query else {}
    return {**window.key(), **fields, **extra}


def service_list(tenant_id: str, window: Window, service: str | None = None) -> list[services.Red]:
    return cached_read(
        tenant_id,
        "services.overview",
        _key(window, service=service),
        lambda: services.service_overview(tenant_id, window.start_ns, window.end_ns, service),
    )


def service_names(tenant_id: str, window: Window) -> list[str]:
    return cached_read(
        tenant_id,
        "services.names",
        _key(window),
        lambda: services.list_services(tenant_id, window.start_ns, window.end_ns),
    )


def operation_list(tenant_id: str, service: str, window: Window) -> list[services.Red]:
    return cached_read(
        tenant_id,
        "services.operations",
        _key(window, service=service),
        lambda: services.operation_red(tenant_id, service, window.start_ns, window.end_ns),
    )


def trace_query(params: dict[str, Any], attributes: tuple[tuple[str, str], ...]) -> trace_search.TraceQuery:
    """The trace search asked by validated ``TraceSearchParams`` (REST and GraphQL alike)."""
    return trace_search.TraceQuery(
        start_ns=params["start_ns"],
        end_ns=params["end_ns"],
        service=params.get("service"),
        operation=params.get("operation"),
        min_duration_ns=params.get("min_duration"),
        max_duration_ns=params.get("max_duration"),
        status=params.get("status"),
        attributes=attributes,
        limit=params["limit"],
    )


def log_query(params: dict[str, Any], attributes: tuple[tuple[str, str], ...] = ()) -> logs.LogQuery:
    """The log search asked by validated ``LogParams`` (REST and GraphQL alike)."""
    return logs.LogQuery(
        start_ns=params["start_ns"],
        end_ns=params["end_ns"],
        service=params.get("service"),
        severity_min=params.get("severity"),
        text=params.get("text"),
        trace_id=params.get("trace_id"),
        limit=params["limit"],
        cursor=params.get("cursor"),
        attributes=attributes,
    )


def trace_summaries(
    tenant_id: str, query: trace_search.TraceQuery, window: Window
) -> list[trace_search.TraceSummary]:
    return cached_read(
        tenant_id,
        "traces.search",
        _key(window, query),
        lambda: trace_search.search_traces(tenant_id, query),
    )


def trace_spans(tenant_id: str, trace_id: str) -> list[dict[str, Any]]:
    """Every span of a trace (spans of a recent trace may still arrive: the short TTL applies)."""
    return cached_read(
        tenant_id, "traces.get", {"trace_id": trace_id}, lambda: traces.get_trace(tenant_id, trace_id)
    )


def log_page(tenant_id: str, query: logs.LogQuery, window: Window) -> logs.LogPage:
    return cached_read(
        tenant_id, "logs.search", _key(window, query), lambda: logs.search_logs(tenant_id, query)
    )


def metric_points(tenant_id: str, query: metrics.MetricQuery, window: Window) -> list[dict[str, Any]]:
    return cached_read(
        tenant_id, "metrics.points", _key(window, query), lambda: metrics.list_metric_points(tenant_id, query)
    )


def metric_names(tenant_id: str, window: Window) -> list[dict[str, Any]]:
    return cached_read(
        tenant_id,
        "metrics.names",
        _key(window),
        lambda: metrics.list_metric_names(tenant_id, window.start_ns, window.end_ns),
    )


def metric_labels(
    tenant_id: str, window: Window, name: str | None = None, label: str | None = None
) -> dict[str, list[str]]:
    return cached_read(
        tenant_id,
        "metrics.labels",
        _key(window, name=name, label=label),
        lambda: metrics.metric_labels(tenant_id, window.start_ns, window.end_ns, name, label),
    )


def error_groups(
    tenant_id: str, window: Window, service: str | None = None, limit: int = 100
) -> list[errors.ErrorGroup]:
    return cached_read(
        tenant_id,
        "errors.list",
        _key(window, service=service, limit=limit),
        lambda: errors.list_errors(tenant_id, window.start_ns, window.end_ns, service, limit),
    )


def topology_edges(tenant_id: str, window: Window) -> list[topology.Edge]:
    return cached_read(
        tenant_id,
        "topology.edges",
        _key(window),
        lambda: topology.service_topology(tenant_id, window.start_ns, window.end_ns),
    )
