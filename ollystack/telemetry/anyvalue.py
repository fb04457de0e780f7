"""Stored attribute values back to OTLP/JSON ``AnyValue`` objects, exactly as they were sent.

String values are stored as text; every other value as the serialized OTLP ``AnyValue`` it arrived as
(see :mod:`ollystack.clickhouse.otlp`), decoded here with the OTLP classes and rendered with protobuf's
JSON mapping, which is the OTLP/JSON encoding.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

JsonValue = dict[str, Any]
Attribute = dict[str, Any]


def double_json(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def from_serialized(raw: bytes) -> JsonValue:
    """OTLP/JSON of a serialized ``AnyValue`` (int64 as a decimal string, bytes as base64)."""
    return MessageToDict(AnyValue.FromString(raw))


def from_serialized_b64(value: str) -> JsonValue:
    return from_serialized(base64.b64decode(value))


def serialized_attributes(
    pairs: list[tuple[str, str]], strings: list[tuple[str, str]] | None = None
) -> list[Attribute]:
    """Attributes from an optional plain string map plus a map of base64 serialized AnyValues, by key."""
    out = [{"key": k, "value": {"stringValue": v}} for k, v in strings or []]
    out += [{"key": k, "value": from_serialized_b64(v)} for k, v in pairs]
    return sorted(out, key=lambda a: a["key"])


def record_attributes(row: dict[str, Any]) -> list[Attribute]:
    """Attributes of a row selected with :data:`ollystack.clickhouse.queries.ATTRIBUTE_COLUMNS`."""
    return serialized_attributes(row["attributes_other_b64"], row["attributes"])


def resource_and_scope(row: dict[str, Any]) -> dict[str, Any]:
    """The resource/scope part of a row selected with ``RESOURCE_SCOPE_COLUMNS``."""
    return {
        "resource": {
            "attributes": serialized_attributes(
                row["resource_attributes_other_b64"], row["resource_attributes"]
            ),
            "droppedAttributesCount": row["resource_dropped_attributes_count"],
        },
        "resourceSchemaUrl": row["resource_schema_url"],
        "scope": {
            "name": row["scope_name"],
            "version": row["scope_version"],
            "attributes": serialized_attributes(row["scope_attributes_b64"]),
            "droppedAttributesCount": row["scope_dropped_attributes_count"],
        },
        "scopeSchemaUrl": row["scope_schema_url"],
        "serviceName": row["service_name"],
    }
