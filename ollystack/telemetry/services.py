"""Which services a tenant has sent telemetry from, and how they do (RED)."""

from __future__ import annotations

from dataclasses import dataclass

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import select, time_range


def list_services(tenant_id: str, start_ns: int, end_ns: int) -> list[str]:
    """Service names seen in spans, logs or metrics with ``start_ns <= time < end_ns``, sorted."""
    parts = []
    params: dict[str, object] = {}
    for table in ("spans", "logs", "metric_points"):
        query = time_range(
            select(table, tenant_id, ["DISTINCT service_name AS service"]), "timestamp", start_ns, end_ns
        )
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
class ServiceRed:
    """Rate, errors and duration of one service; counts are sums of sampling weights (estimated totals)."""

    service: str
    requests: float
    errors: float
    p50_ns: float
    p95_ns: float
    p99_ns: float


def service_red(tenant_id: str, start_ns: int, end_ns: int) -> list[ServiceRed]:
    """RED figures per service from the spans in ``[start_ns, end_ns)``, right under sampling: each stored
    span counts as many spans as its weight says."""
    query = time_range(
        select(
            "spans",
            tenant_id,
            [
                "service_name",
                "sum(weight)",
                "sumIf(weight, status_code = 2)",
                # quantiles need integer weights: thousandths keep the weights' precision
                "quantilesTDigestWeighted(0.5, 0.95, 0.99)(duration_ns, toUInt64(round(weight * 1000)))",
            ],
        ),
        "timestamp",
        start_ns,
        end_ns,
    )
    sql, params = query.grouped("service_name").ordered("service_name").sql()
    return [
        ServiceRed(service, float(requests), float(errors), *(float(q) for q in quantiles))
        for service, requests, errors, quantiles in get_backend().query(sql, params).rows
    ]
