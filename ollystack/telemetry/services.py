"""Which services a tenant has sent telemetry from."""

from __future__ import annotations

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
