"""Reading traces."""

from __future__ import annotations

import re
from typing import Any

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import ATTRIBUTE_COLUMNS, RESOURCE_SCOPE_COLUMNS, b64_maps, ns, select
from ollystack.telemetry.anyvalue import record_attributes, resource_and_scope, serialized_attributes

_HEX_ID = re.compile(r"[0-9a-fA-F]{32}")

SPAN_COLUMNS = (
    "lower(hex(trace_id)) AS trace_id_hex",
    "lower(hex(span_id)) AS span_id_hex",
    "lower(hex(parent_span_id)) AS parent_span_id_hex",
    "trace_state",
    "flags",
    "name",
    "kind",
    f"{ns('timestamp')} AS start_ns",
    "toString(toUnixTimestamp64Nano(timestamp) + duration_ns) AS end_ns",
    *ATTRIBUTE_COLUMNS,
    "arrayMap(t -> toString(t), events.time_unix_nano) AS events_time",
    "events.name AS events_name",
    b64_maps("events.attributes", "events_attributes"),
    "events.dropped_attributes_count AS events_dropped",
    "dropped_events_count",
    "arrayMap(x -> lower(hex(x)), links.trace_id) AS links_trace_id",
    "arrayMap(x -> lower(hex(x)), links.span_id) AS links_span_id",
    "links.trace_state AS links_trace_state",
    "links.flags AS links_flags",
    b64_maps("links.attributes", "links_attributes"),
    "links.dropped_attributes_count AS links_dropped",
    "dropped_links_count",
    "status_code",
    "status_message",
    *RESOURCE_SCOPE_COLUMNS,
)


def span_json(row: dict[str, Any]) -> dict[str, Any]:
    """One stored span in OTLP/JSON shape."""
    events = [
        {"timeUnixNano": t, "name": n, "attributes": serialized_attributes(a), "droppedAttributesCount": d}
        for t, n, a, d in zip(
            row["events_time"],
            row["events_name"],
            row["events_attributes"],
            row["events_dropped"],
            strict=True,
        )
    ]
    links = [
        {
            "traceId": t,
            "spanId": s,
            "traceState": st,
            "flags": f,
            "attributes": serialized_attributes(a),
            "droppedAttributesCount": d,
        }
        for t, s, st, f, a, d in zip(
            row["links_trace_id"],
            row["links_span_id"],
            row["links_trace_state"],
            row["links_flags"],
            row["links_attributes"],
            row["links_dropped"],
            strict=True,
        )
    ]
    return {
        "traceId": row["trace_id_hex"],
        "spanId": row["span_id_hex"],
        "parentSpanId": row["parent_span_id_hex"],
        "traceState": row["trace_state"],
        "flags": row["flags"],
        "name": row["name"],
        "kind": row["kind"],
        "startTimeUnixNano": row["start_ns"],
        "endTimeUnixNano": row["end_ns"],
        "attributes": record_attributes(row),
        "droppedAttributesCount": row["dropped_attributes_count"],
        "events": events,
        "droppedEventsCount": row["dropped_events_count"],
        "links": links,
        "droppedLinksCount": row["dropped_links_count"],
        "status": {"code": row["status_code"], "message": row["status_message"]},
        **resource_and_scope(row),
    }


def get_trace(tenant_id: str, trace_id_hex: str) -> list[dict[str, Any]]:
    """Every span of one trace, ordered by start time."""
    if not _HEX_ID.fullmatch(trace_id_hex or ""):
        raise ValueError(f"trace id {trace_id_hex!r} is not 32 hexadecimal characters")
    query = (
        select("spans", tenant_id, SPAN_COLUMNS)
        .filter("trace_id = unhex({trace_id:String})", trace_id=trace_id_hex)
        .ordered("timestamp, span_id")
    )
    sql, params = query.sql()
    return [span_json(row) for row in get_backend().query(sql, params).as_dicts()]
