"""Searching logs, newest first, with cursor pagination."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import (
    ATTRIBUTE_COLUMNS,
    RESOURCE_SCOPE_COLUMNS,
    Select,
    ns,
    select,
    time_range,
)
from ollystack.telemetry.anyvalue import from_serialized_b64, record_attributes, resource_and_scope
from ollystack.telemetry.trace_search import MAX_ATTRIBUTE_FILTERS, attribute_condition

_HEX = re.compile(r"[0-9a-fA-F]{32}")
MAX_LIMIT = 1000

LOG_COLUMNS = (
    f"{ns('timestamp')} AS time_ns",
    f"{ns('observed_timestamp')} AS observed_ns",
    "record_id",
    "severity_number",
    "severity_text",
    "body",
    "base64Encode(body_value) AS body_value_b64",
    *ATTRIBUTE_COLUMNS,
    "flags",
    "lower(hex(trace_id)) AS trace_id_hex",
    "lower(hex(span_id)) AS span_id_hex",
    "event_name",
    *RESOURCE_SCOPE_COLUMNS,
)


@dataclass(frozen=True)
class LogQuery:
    start_ns: int
    end_ns: int
    service: str | None = None
    severity_min: int | None = None
    severity_text: str | None = None
    text: str | None = None
    trace_id: str | None = None
    limit: int = 100
    cursor: str | None = None
    # (key, value): the record's or its resource's attribute equals value
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LogPage:
    records: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None


def encode_cursor(time_ns: int, record_id: int) -> str:
    return base64.urlsafe_b64encode(f"{time_ns}:{record_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        time_ns, record_id = raw.split(":")
        return int(time_ns), int(record_id)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"cursor {cursor!r} is not one this server returned") from None


# ClickHouse's tokens: runs of ASCII letters and digits and of non-ASCII characters (hasToken, tokenbf_v1)
_TOKEN = re.compile(r"[0-9A-Za-z\u0080-\U0010ffff]+")
MAX_TEXT_TOKENS = 16


def text_filter(query: Select, text: str) -> Select:
    """Records whose body holds every word of ``text`` as a whole word (and ``text`` itself, when it is more
    than one word). Whole words let the token bloom filter on ``body`` skip almost every granule: a rare id
    is found among millions of records without reading their bodies."""
    condition, params = text_condition(text)
    return query.filter(condition, **params)


def text_condition(text: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    """The condition of :func:`text_filter` and its parameters (named with ``prefix``)."""
    words = list(dict.fromkeys(_TOKEN.findall(text)))[:MAX_TEXT_TOKENS]
    parts = [f"hasToken(body, {{{prefix}word_{n}:String}})" for n in range(len(words))]
    params: dict[str, Any] = {f"{prefix}word_{n}": word for n, word in enumerate(words)}
    if words != [text]:
        parts.append(f"position(body, {{{prefix}body_text:String}}) > 0")
        params[f"{prefix}body_text"] = text
    return " AND ".join(parts), params


def body_json(row: dict[str, Any]) -> dict[str, Any]:
    stored = base64.b64decode(row["body_value_b64"])
    if stored == b"\n":
        return {"stringValue": row["body"]}
    return from_serialized_b64(row["body_value_b64"])


def log_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "timeUnixNano": row["time_ns"],
        "observedTimeUnixNano": row["observed_ns"],
        "severityNumber": row["severity_number"],
        "severityText": row["severity_text"],
        "body": body_json(row),
        "attributes": record_attributes(row),
        "droppedAttributesCount": row["dropped_attributes_count"],
        "flags": row["flags"],
        "traceId": row["trace_id_hex"],
        "spanId": row["span_id_hex"],
        "eventName": row["event_name"],
        **resource_and_scope(row),
    }


def search_logs(tenant_id: str, query: LogQuery) -> LogPage:
    limit = max(1, min(int(query.limit), MAX_LIMIT))
    q = log_filters(select("logs", tenant_id, LOG_COLUMNS), query)
    if query.cursor:
        time_ns, record_id = decode_cursor(query.cursor)
        q = q.filter(
            "(timestamp, record_id) < "
            "(fromUnixTimestamp64Nano({cursor_ns:Int64}, 'UTC'), {cursor_id:UInt64})",
            cursor_ns=time_ns,
            cursor_id=record_id,
        )
    sql, params = q.ordered("timestamp DESC, record_id DESC").limited(limit + 1).sql()
    rows = get_backend().query(sql, params).as_dicts()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(int(rows[-1]["time_ns"]), rows[-1]["record_id"])
    return LogPage([log_json(r) for r in rows], next_cursor)


def log_filters(q: Select, query: LogQuery) -> Select:
    """``q`` (a select on ``logs``) restricted to the records ``query`` asks for, cursor aside: the log
    search, its histogram and the live tail filter alike."""
    q = time_range(q, "timestamp", query.start_ns, query.end_ns)
    if query.service is not None:
        q = q.filter("service_name = {service:String}", service=query.service)
    if query.severity_min is not None:
        q = q.filter("severity_number >= {severity_min:Int32}", severity_min=int(query.severity_min))
    if query.severity_text is not None:
        q = q.filter("severity_text = {severity_text:String}", severity_text=query.severity_text)
    if query.text:
        q = text_filter(q, query.text)
    if len(query.attributes) > MAX_ATTRIBUTE_FILTERS:
        raise ValueError(f"at most {MAX_ATTRIBUTE_FILTERS} attribute filters")
    for n, (key, value) in enumerate(query.attributes):
        condition, values = attribute_condition(n, key, value)
        q = q.filter(condition, **values)
    if query.trace_id is not None:
        if not _HEX.fullmatch(query.trace_id):
            raise ValueError(f"trace id {query.trace_id!r} is not 32 hexadecimal characters")
        q = q.filter("trace_id = unhex({trace_id:String})", trace_id=query.trace_id)
    return q
