"""Stored attribute values back to OTLP/JSON ``AnyValue`` objects, exactly as they were sent.

Tagged values (see :mod:`ollystack.clickhouse.ingest_sql`) are one tag byte + payload: ``s`` string,
``i`` int64 and ``d`` double (little-endian, trailing zero bytes trimmed by ClickHouse), ``t``/``f`` bool,
``y`` bytes, ``a``/``k`` a serialized ``ArrayValue``/``KeyValueList``; an empty tagged value is an empty
AnyValue. Nested values are decoded with the OTLP classes and rendered with protobuf's JSON mapping.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.common.v1.common_pb2 import ArrayValue, KeyValueList

JsonValue = dict[str, Any]
Attribute = dict[str, Any]


def double_json(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def from_tagged(raw: bytes) -> JsonValue:
    if not raw:
        return {}
    tag, payload = raw[:1], raw[1:]
    if tag == b"s":
        return {"stringValue": payload.decode("utf-8", "replace")}
    if tag == b"i":
        return {"intValue": str(int.from_bytes(payload.ljust(8, b"\0"), "little", signed=True))}
    if tag == b"d":
        return {"doubleValue": double_json(struct.unpack("<d", payload.ljust(8, b"\0"))[0])}
    if tag in (b"t", b"f"):
        return {"boolValue": tag == b"t"}
    if tag == b"y":
        return {"bytesValue": base64.b64encode(payload).decode()}
    if tag == b"a":
        return {"arrayValue": MessageToDict(ArrayValue.FromString(payload))}
    if tag == b"k":
        return {"kvlistValue": MessageToDict(KeyValueList.FromString(payload))}
    raise ValueError(f"unknown stored value tag {tag!r}")


def from_tagged_b64(value: str) -> JsonValue:
    return from_tagged(base64.b64decode(value))


def tagged_attributes(
    pairs: list[tuple[str, str]], strings: list[tuple[str, str]] | None = None
) -> list[Attribute]:
    """Attributes from an optional plain string map plus a base64 tagged-value map, sorted by key."""
    out = [{"key": k, "value": {"stringValue": v}} for k, v in strings or []]
    out += [{"key": k, "value": from_tagged_b64(v)} for k, v in pairs]
    return sorted(out, key=lambda a: a["key"])


def typed_attributes(
    strings: list[tuple[str, str]],
    ints: list[tuple[str, int]],
    floats: list[tuple[str, float]],
    bools: list[tuple[str, bool]],
    other_b64: list[tuple[str, str]],
) -> list[Attribute]:
    """Record attributes from the typed maps (string/int/float/bool/other), sorted by key."""
    out: list[Attribute] = [{"key": k, "value": {"stringValue": v}} for k, v in strings]
    out += [{"key": k, "value": {"intValue": str(v)}} for k, v in ints]
    out += [{"key": k, "value": {"doubleValue": double_json(v)}} for k, v in floats]
    out += [{"key": k, "value": {"boolValue": bool(v)}} for k, v in bools]
    out += [{"key": k, "value": from_tagged_b64(v)} for k, v in other_b64]
    return sorted(out, key=lambda a: a["key"])


def record_attributes(row: dict[str, Any]) -> list[Attribute]:
    """Attributes of a row selected with :data:`ollystack.clickhouse.queries.ATTRIBUTE_COLUMNS`."""
    return typed_attributes(
        row["attributes"],
        row["attributes_int"],
        row["attributes_float"],
        row["attributes_bool"],
        row["attributes_other_b64"],
    )


def resource_and_scope(row: dict[str, Any]) -> dict[str, Any]:
    """The resource/scope part of a row selected with ``RESOURCE_SCOPE_COLUMNS``."""
    return {
        "resource": {
            "attributes": tagged_attributes(row["resource_attributes_other_b64"], row["resource_attributes"]),
            "droppedAttributesCount": row["resource_dropped_attributes_count"],
        },
        "resourceSchemaUrl": row["resource_schema_url"],
        "scope": {
            "name": row["scope_name"],
            "version": row["scope_version"],
            "attributes": tagged_attributes(row["scope_attributes_b64"]),
            "droppedAttributesCount": row["scope_dropped_attributes_count"],
        },
        "scopeSchemaUrl": row["scope_schema_url"],
        "serviceName": row["service_name"],
    }
