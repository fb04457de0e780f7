"""The service map: caller → callee edges with calls, errors and latency (``service_topology`` view)."""

from __future__ import annotations

from dataclasses import dataclass

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import minute_range, select
from ollystack.clickhouse.views import digest


@dataclass(frozen=True)
class Edge:
    caller: str
    callee: str
    instrumented: bool  # False: the callee is named by the client span's peer attributes (a database, …)
    calls: float  # sums of sampling weights
    errors: float
    mean_ns: float
    p50_ns: float
    p95_ns: float
    p99_ns: float


def service_topology(tenant_id: str, start_ns: int, end_ns: int) -> list[Edge]:
    """Every edge seen in the minutes overlapping ``[start_ns, end_ns)``, busiest first."""
    query = minute_range(
        select(
            "service_topology",
            tenant_id,
            [
                "caller",
                "callee",
                "instrumented",
                "sum(calls) AS total_calls",
                "sum(errors) AS total_errors",
                "sum(duration_ns_sum) AS duration_total",
                f"{digest('Merge')}(duration) AS quantiles",
            ],
        ),
        "minute",
        start_ns,
        end_ns,
    )
    query = query.grouped("caller, callee, instrumented").ordered("total_calls DESC, caller, callee")
    sql, params = query.sql()
    edges = []
    for row in get_backend().query(sql, params).rows:
        caller, callee, instrumented, calls, errors, duration, quantiles = row
        p50, _p90, p95, p99 = (float(q) for q in quantiles)
        mean = float(duration) / float(calls) if calls else 0.0
        edge = Edge(caller, callee, bool(instrumented), float(calls), float(errors), mean, p50, p95, p99)
        edges.append(edge)
    return edges
