"""Errors grouped by service, exception type and message fingerprint, from the ``error_aggregates`` view."""

from __future__ import annotations

from dataclasses import dataclass

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import hour_range, ns, select


@dataclass(frozen=True)
class ErrorGroup:
    service: str
    exception_type: str
    fingerprint: int
    pattern: str  # the message with numbers, uuids and hex ids collapsed
    count: float  # sum of sampling weights
    first_seen_ns: int
    last_seen_ns: int
    example_message: str
    example_trace_id: str  # hex
    example_span_id: str  # hex


def list_errors(
    tenant_id: str, start_ns: int, end_ns: int, service: str | None = None, limit: int = 100
) -> list[ErrorGroup]:
    """Error groups seen in the hours overlapping ``[start_ns, end_ns)``, most frequent first."""
    query = hour_range(
        select(
            "error_aggregates",
            tenant_id,
            [
                "service_name",
                "exception_type",
                "fingerprint",
                "any(pattern) AS any_pattern",
                "sum(count) AS total",
                f"{ns('min(first_seen)')} AS first_ns",
                f"{ns('max(last_seen)')} AS last_ns",
                "any(example_message) AS message",
                "lower(hex(any(example_trace_id))) AS trace",
                "lower(hex(any(example_span_id))) AS span",
            ],
        ),
        "hour",
        start_ns,
        end_ns,
    )
    if service:
        query = query.filter("service_name = {service:String}", service=service)
    sql, params = (
        query.grouped("service_name, exception_type, fingerprint")
        .ordered("total DESC, last_ns DESC")
        .limited(limit)
        .sql()
    )
    rows = get_backend().query(sql, params).rows
    return [
        ErrorGroup(svc, etype, int(fp), pattern, float(total), int(first), int(last), msg, trace, span)
        for svc, etype, fp, pattern, total, first, last, msg, trace, span in rows
    ]
