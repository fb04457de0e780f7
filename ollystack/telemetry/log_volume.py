"""Log records per service, severity and minute, from the ``log_volume_1m`` view (the log histogram)."""

from __future__ import annotations

from dataclasses import dataclass

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import minute_range, select


@dataclass(frozen=True)
class LogVolume:
    minute_ns: int
    service: str
    severity: str  # TRACE, DEBUG, INFO, WARN, ERROR, FATAL or UNSPECIFIED
    records: int


def log_volume(tenant_id: str, start_ns: int, end_ns: int, service: str | None = None) -> list[LogVolume]:
    """Records per minute, service and severity for the minutes overlapping ``[start_ns, end_ns)``."""
    query = minute_range(
        select(
            "log_volume_1m",
            tenant_id,
            ["toUnixTimestamp(minute) * 1000000000 AS minute_ns", "service_name", "severity", "sum(records)"],
        ),
        "minute",
        start_ns,
        end_ns,
    )
    if service:
        query = query.filter("service_name = {service:String}", service=service)
    query = query.grouped("minute, service_name, severity").ordered("minute_ns, service_name, severity")
    sql, params = query.sql()
    return [LogVolume(int(m), svc, sev, int(n)) for m, svc, sev, n in get_backend().query(sql, params).rows]
