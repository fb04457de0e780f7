"""Decoding and validation of OTLP export requests, shared by the gRPC and HTTP receivers.

Python handles requests, not records (docs: DESIGN §3): a protobuf request is parsed with the upb classes
only to prove it is a well-formed ``Export*ServiceRequest`` and to count its records with ``len()`` of the
repeated fields; the bytes that go to the WAL are the bytes that came in, and ClickHouse does the
per-record work.

Span and trace id lengths are *not* checked here for protobuf requests: on a 1 000-span request that loop
costs ~0.23 ms, 27-33 % of the parse itself (measured with upb on the reference machine), so the storage
layer's SQL drops spans whose ids have the wrong length. OTLP/JSON is the slow path anyway: its hex ids
must be converted to bytes one by one, so they are validated on the way and a bad one is a 400 naming it.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from ollystack.clickhouse import Signal

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class InvalidPayload(ValueError):
    """The request cannot be accepted as sent; retrying it unchanged will not help (400/INVALID_ARGUMENT)."""


class RequestTooLarge(ValueError):
    """The (decompressed) request is larger than ``OLLYSTACK_MAX_REQUEST_BYTES`` (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"request body exceeds {limit} bytes after decompression "
            "(OLLYSTACK_MAX_REQUEST_BYTES); send smaller batches"
        )
        self.limit = limit


class UnsupportedEncoding(ValueError):
    """Content-Encoding / grpc-encoding other than gzip or identity (415)."""


@dataclass(frozen=True)
class SignalSpec:
    signal: Signal
    request: type[Message]
    response: type[Message]
    grpc_method: str
    http_path: str


SPECS: dict[Signal, SignalSpec] = {
    Signal.TRACES: SignalSpec(
        Signal.TRACES,
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        "/v1/traces",
    ),
    Signal.LOGS: SignalSpec(
        Signal.LOGS,
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        "/v1/logs",
    ),
    Signal.METRICS: SignalSpec(
        Signal.METRICS,
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        "/v1/metrics",
    ),
}


@dataclass(frozen=True)
class DecodedRequest:
    signal: Signal
    payload: bytes  # serialized Export*ServiceRequest, exactly what goes into the WAL
    records: int  # spans, log records or metric data points
    rejected: int = 0  # records left out (OTLP partial success)
    message: str = ""  # why, for the partial success response


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding: gzip`` without ever holding more than ``limit`` decompressed bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > limit:
            raise RequestTooLarge(limit)
        return body
    if encoding != "gzip":
        raise UnsupportedEncoding(f"unsupported content encoding {encoding!r}; use gzip or none")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidPayload(f"gzip body is corrupt: {exc}") from None
    if len(out) > limit:
        raise RequestTooLarge(limit)
    if not inflater.eof:
        raise InvalidPayload("gzip body is truncated")
    return out


def decode(signal: Signal, body: bytes, content_type: str = PROTOBUF) -> DecodedRequest:
    """Validate one (already decompressed) export request and count its records."""
    spec = SPECS[signal]
    if content_type == JSON:
        message, rejected, why = _from_json(spec, body)
        records = count_records(signal, message)
        return DecodedRequest(signal, message.SerializeToString(), records, rejected, why)
    else:
        try:
            message = spec.request.FromString(body)
        except DecodeError as exc:
            raise InvalidPayload(f"malformed OTLP protobuf for {spec.request.__name__}: {exc}") from None
        payload = body
    return DecodedRequest(signal, payload, count_records(signal, message))


def count_records(signal: Signal, message: Any) -> int:
    """Records in a parsed request, by resource and scope (never a loop over the records themselves)."""
    n = 0
    if signal is Signal.TRACES:
        for rs in message.resource_spans:
            for ss in rs.scope_spans:
                n += len(ss.spans)
    elif signal is Signal.LOGS:
        for rl in message.resource_logs:
            for sl in rl.scope_logs:
                n += len(sl.log_records)
    else:
        for rm in message.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is not None:
                        n += len(getattr(metric, kind).data_points)
    return n


def encode_response(signal: Signal, content_type: str, rejected: int = 0, message: str = "") -> bytes:
    """An ``Export*ServiceResponse``; ``partial_success`` is set only when something was rejected."""
    response: Any = SPECS[signal].response()
    if rejected or message:
        field = {
            Signal.TRACES: "rejected_spans",
            Signal.LOGS: "rejected_log_records",
            Signal.METRICS: "rejected_data_points",
        }[signal]
        setattr(response.partial_success, field, rejected)
        response.partial_success.error_message = message
    if content_type == JSON:
        return json_format.MessageToJson(response, indent=None).encode()
    return bytes(response.SerializeToString())


# --- OTLP/JSON ------------------------------------------------------------------------------------
# Field name (lowerCamelCase and snake_case) -> expected length in bytes. Everywhere these names appear
# (spans, span links, log records, exemplars) OTLP/JSON carries them as hex, not base64.
_ID_FIELDS = {
    "traceId": 16,
    "trace_id": 16,
    "spanId": 8,
    "span_id": 8,
    "parentSpanId": 8,
    "parent_span_id": 8,
}


# Where the records of each signal sit in an OTLP/JSON document (lowerCamelCase or snake_case names).
_RECORD_PATHS = {
    Signal.TRACES: (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans",)),
    Signal.LOGS: (
        ("resourceLogs", "resource_logs"),
        ("scopeLogs", "scope_logs"),
        ("logRecords", "log_records"),
    ),
}


def _from_json(spec: SignalSpec, body: bytes) -> tuple[Message, int, str]:
    """The request, plus how many records were left out for malformed ids and why (partial success)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidPayload(f"request body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidPayload(
            f"OTLP/JSON body must be an object ({spec.request.__name__}), not {type(document).__name__}"
        )
    rejected, why = _drop_records_with_bad_ids(spec.signal, document)
    _hex_ids_to_base64(document, "")
    message = spec.request()
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise InvalidPayload(f"malformed OTLP/JSON for {spec.request.__name__}: {exc}") from None
    return message, rejected, why


def _field(node: dict[str, Any], names: tuple[str, ...]) -> tuple[str, Any]:
    for name in names:
        if name in node:
            return name, node[name]
    return names[0], None


def _drop_records_with_bad_ids(signal: Signal, document: dict[str, Any]) -> tuple[int, str]:
    """Remove spans/log records whose ids are malformed; the rest of the request is still accepted."""
    paths = _RECORD_PATHS.get(signal)
    if paths is None:
        return 0, ""
    (outer, middle, inner), rejected, first = paths, 0, ""
    outer_name, resources = _field(document, outer)
    for r, resource in enumerate(resources if isinstance(resources, list) else []):
        middle_name, scopes = _field(resource, middle) if isinstance(resource, dict) else ("", None)
        for s, scope in enumerate(scopes if isinstance(scopes, list) else []):
            inner_name, records = _field(scope, inner) if isinstance(scope, dict) else ("", None)
            if not isinstance(records, list):
                continue
            kept = []
            for i, record in enumerate(records):
                try:
                    where = f"{outer_name}[{r}].{middle_name}[{s}].{inner_name}[{i}]"
                    _hex_ids_to_base64(record, where, convert=False)
                except InvalidPayload as exc:
                    rejected += 1
                    first = first or str(exc)
                    continue
                kept.append(record)
            scope[inner_name] = kept
    if not rejected:
        return 0, ""
    what = "spans" if signal is Signal.TRACES else "log records"
    return rejected, f"{rejected} {what} rejected for malformed ids; first: {first}"


def _hex_ids_to_base64(node: Any, path: str, convert: bool = True) -> None:
    """Rewrite hex trace/span ids in place to the base64 that protobuf's JSON mapping expects
    (with ``convert=False`` only check them)."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else key
            size = _ID_FIELDS.get(key)
            if size is not None and not isinstance(value, dict | list):
                converted = _hex_to_base64(value, size, where)
                if convert:
                    node[key] = converted
            else:
                _hex_ids_to_base64(value, where, convert)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _hex_ids_to_base64(item, f"{path}[{index}]", convert)


def _hex_to_base64(value: Any, size: int, where: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) != 2 * size:
        raise InvalidPayload(f"{where}: {value!r} is not {2 * size} hex characters")
    try:
        raw = binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        raise InvalidPayload(f"{where}: {value!r} is not {2 * size} hex characters") from None
    return base64.b64encode(raw).decode("ascii")
