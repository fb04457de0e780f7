"""Turn the REST API's OTLP/JSON-shaped answers back into protobuf messages, to compare with what was sent.

Comparing protobuf messages (rather than dicts) makes the check exact about types (int vs double, bytes vs
string) while ignoring how defaults are spelled. Attribute lists are compared as sets keyed by name.
"""

from __future__ import annotations

import base64
import copy
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


def hex_ids_to_base64(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: (
                base64.b64encode(bytes.fromhex(v)).decode()
                if k in ID_FIELDS and isinstance(v, str)
                else hex_ids_to_base64(v)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [hex_ids_to_base64(v) for v in obj]
    return obj


def parse(api_obj: dict[str, Any], message: type[M]) -> M:
    return json_format.ParseDict(hex_ids_to_base64(api_obj), message(), ignore_unknown_fields=True)


def normalise(msg: M) -> M:
    """A copy whose attribute lists (at any depth) are sorted by key."""
    out = copy.deepcopy(msg)
    _sort_attributes(out)
    return out


def _sort_attributes(msg: Message) -> None:
    for desc, value in msg.ListFields():
        if desc.message_type is None:
            continue
        if desc.is_repeated and not desc.message_type.GetOptions().map_entry:
            for item in value:
                _sort_attributes(item)
            if desc.name == "attributes":
                items = sorted(value, key=lambda kv: kv.key)
                copies = [copy.deepcopy(kv) for kv in items]
                del value[:]
                value.extend(copies)
        elif not desc.is_repeated:
            _sort_attributes(value)


def assert_same(actual: Message, expected: Message) -> None:
    a, e = normalise(actual), normalise(expected)
    assert a == e, f"\nexpected:\n{e}\nactual:\n{a}"
