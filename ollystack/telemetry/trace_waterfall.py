"""One trace for a waterfall: the few columns that place each span, and one span's full record on demand.

A waterfall needs only ids, names, services, times and status of every span; the attributes, events,
links and resource of a span are read when someone opens it. Reading just those columns keeps a trace of
thousands of spans a few milliseconds of ClickHouse work and a small answer, where the full trace
(``traces.get_trace``) decodes every attribute of every span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import ns, select
from ollystack.telemetry.traces import SPAN_COLUMNS, span_json

MAX_SPANS = 20_000
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")

WATERFALL_COLUMNS = (
    "lower(hex(span_id)) AS span_id_hex",
    "lower(hex(parent_span_id)) AS parent_span_id_hex",
    "name",
    "service_name",
    "kind",
    f"{ns('timestamp')} AS start_ns",
    "toString(toUnixTimestamp64Nano(timestamp) + duration_ns) AS end_ns",
    "status_code",
    "status_message",
)


@dataclass(frozen=True)
class Waterfall:
    spans: list[dict[str, Any]]  # OTLP/JSON field names, placement fields only
    truncated: bool  # the trace has more than the limit; the earliest spans are kept


def _check_trace_id(trace_id_hex: str) -> None:
    if not _TRACE_ID.fullmatch(trace_id_hex or ""):
        raise ValueError(f"trace id {trace_id_hex!r} is not 32 hexadecimal characters")


def waterfall(tenant_id: str, trace_id_hex: str, limit: int = MAX_SPANS) -> Waterfall:
    """The spans of one trace by start time, at most ``limit`` of them."""
    _check_trace_id(trace_id_hex)
    limit = max(1, min(int(limit), MAX_SPANS))
    query = (
        select("spans", tenant_id, WATERFALL_COLUMNS)
        .filter("trace_id = unhex({trace_id:String})", trace_id=trace_id_hex)
        .ordered("timestamp, span_id")
        .limited(limit + 1)
    )
    sql, params = query.sql()
    rows = get_backend().query(sql, params).rows
    spans = [
        {
            "spanId": span_id,
            "parentSpanId": parent,
            "name": name,
            "serviceName": service,
            "kind": kind,
            "startTimeUnixNano": start,
            "endTimeUnixNano": end,
            "status": {"code": code, "message": message},
        }
        for span_id, parent, name, service, kind, start, end, code, message in rows[:limit]
    ]
    return Waterfall(spans=spans, truncated=len(rows) > limit)


def get_span(tenant_id: str, trace_id_hex: str, span_id_hex: str) -> dict[str, Any] | None:
    """One span with everything stored about it (OTLP/JSON, as in ``traces.get_trace``), or None."""
    _check_trace_id(trace_id_hex)
    if not _SPAN_ID.fullmatch(span_id_hex or ""):
        raise ValueError(f"span id {span_id_hex!r} is not 16 hexadecimal characters")
    query = (
        select("spans", tenant_id, SPAN_COLUMNS)
        .filter("trace_id = unhex({trace_id:String})", trace_id=trace_id_hex)
        .filter("span_id = unhex({span_id:String})", span_id=span_id_hex)
        .ordered("timestamp")
        .limited(1)
    )
    sql, params = query.sql()
    rows = get_backend().query(sql, params).as_dicts()
    return span_json(rows[0]) if rows else None
