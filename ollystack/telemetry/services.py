"""Which services a tenant has sent telemetry from, and how they do (RED)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import minute_range, select
from ollystack.clickhouse.rollups import red_rows
from ollystack.clickhouse.views import digest


def list_services(tenant_id: str, start_ns: int, end_ns: int) -> list[str]:
    """Service names seen in spans, logs or metrics in the minutes overlapping ``[start_ns, end_ns)``,
    sorted. Read from the per-minute views (a service's minute rows), not from the raw rows."""
    spans = red_rows(tenant_id, start_ns, end_ns, ["DISTINCT service_name AS service"])
    logs = minute_range(
        select("log_volume_1m", tenant_id, ["DISTINCT service_name AS service"]), "minute", start_ns, end_ns
    )
    metrics = minute_range(
        select("metric_series_1m", tenant_id, ["DISTINCT service_name AS service"]),
        "minute",
        start_ns,
        end_ns,
    )
    parts = []
    params: dict[str, object] = {}
    for query in (spans, logs, metrics):
        sql, p = query.sql()
        parts.append(sql)
        params.update(p)
    sql = (
        "SELECT service FROM (\n"
        + "\nUNION ALL\n".join(parts)
        + "\n) WHERE service != '' GROUP BY service ORDER BY service"
    )
    return [row[0] for row in get_backend().query(sql, params).rows]


@dataclass(frozen=True)
class Red:
    """Rate, errors and duration of a service (or one of its operations) over a time range. Counts are sums
    of sampling weights, i.e. estimates of what was sent; durations in nanoseconds."""

    service: str
    operation: str
    requests: float
    errors: float
    mean_ns: float
    p50_ns: float
    p90_ns: float
    p95_ns: float
    p99_ns: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


_RED_COLUMNS = [
    "sum(requests) AS requests_total",
    "sum(errors) AS errors_total",
    "sum(duration_ns_sum) AS duration_total",
    f"{digest('Merge')}(duration) AS quantiles",
]


def _red(row: tuple[Any, ...], service: str, operation: str) -> Red:
    requests, errors, duration_total, quantiles = row
    total = float(requests)
    p50, p90, p95, p99 = (float(q) for q in quantiles)
    mean = float(duration_total) / total if total else 0.0
    return Red(service, operation, total, float(errors), mean, p50, p90, p95, p99)


def service_red(tenant_id: str, start_ns: int, end_ns: int, service: str | None = None) -> list[Red]:
    """RED per service (or of one) over the minutes of ``[start_ns, end_ns)``, counted on entry spans
    (where requests enter a service: SERVER/CONSUMER or root spans), from the per-minute view and its
    rollups."""
    query = red_rows(tenant_id, start_ns, end_ns, ["service_name", *_RED_COLUMNS]).filter("entry = 1")
    if service is not None:
        query = query.filter("service_name = {service:String}", service=service)
    sql, params = query.grouped("service_name").ordered("service_name").sql()
    return [_red(tuple(row[1:]), row[0], "") for row in get_backend().query(sql, params).rows]


def operation_red(tenant_id: str, service: str, start_ns: int, end_ns: int) -> list[Red]:
    """RED per operation (span name) of one service, over all its spans, from the per-minute view and its
    rollups."""
    query = red_rows(tenant_id, start_ns, end_ns, ["operation", *_RED_COLUMNS]).filter(
        "service_name = {service:String}", service=service
    )
    sql, params = query.grouped("operation").ordered("operation").sql()
    return [_red(tuple(row[1:]), service, row[0]) for row in get_backend().query(sql, params).rows]


def service_overview(tenant_id: str, start_ns: int, end_ns: int, service: str | None = None) -> list[Red]:
    """Every service seen in ``[start_ns, end_ns)`` (or only ``service``) with its RED figures; a service
    that sent only logs or metrics, or had no requests enter it, has zeros (so the list matches what the
    other views show)."""
    red = {row.service: row for row in service_red(tenant_id, start_ns, end_ns, service)}
    if service is not None and red:  # it had requests: no need to look for it elsewhere
        return list(red.values())
    names = sorted(set(list_services(tenant_id, start_ns, end_ns)) | set(red))
    if service is not None:
        names = [name for name in names if name == service]
    return [red.get(name) or Red(name, "", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0) for name in names]
