"""Decoding and validation of OTLP requests (protobuf and JSON), with every error message."""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ingest.otlp import (
    JSON,
    PROTOBUF,
    InvalidPayload,
    RequestTooLarge,
    UnsupportedEncoding,
    decode,
    decompress,
    encode_response,
)
from ollystack.clickhouse import Signal
from tests.ingest.conftest import logs_request, metrics_request, trace_request

ID_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


def otlp_json(message: Any, **options: Any) -> bytes:
    """OTLP/JSON as an SDK sends it: protobuf JSON mapping, but trace and span ids in hex."""

    def hexify(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex() if k in ID_KEYS and isinstance(v, str) else hexify(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [hexify(item) for item in node]
        return node

    return json.dumps(hexify(MessageToDict(message, **options))).encode()


REQUESTS = [
    (Signal.TRACES, trace_request, 3),
    (Signal.LOGS, logs_request, 3),
    (Signal.METRICS, metrics_request, 6),
]


@pytest.mark.parametrize(("signal", "build", "records"), REQUESTS)
def test_protobuf_is_passed_through_and_counted(signal: Signal, build: Any, records: int) -> None:
    body = build().SerializeToString()
    decoded = decode(signal, body, PROTOBUF)
    assert decoded.payload is body
    assert decoded.records == records


@pytest.mark.parametrize(("signal", "build", "records"), REQUESTS)
@pytest.mark.parametrize(
    "options",
    [
        {},  # lowerCamelCase, enum names, 64-bit ints as strings
        {"preserving_proto_field_name": True},  # snake_case
        {"use_integers_for_enums": True},
    ],
)
def test_json_converts_to_the_same_protobuf(signal: Signal, build: Any, records: int, options: Any) -> None:
    message = build()
    decoded = decode(signal, otlp_json(message, **options), JSON)
    assert type(message).FromString(decoded.payload) == message
    assert decoded.records == records


def test_json_accepts_64_bit_integers_as_numbers_and_unknown_fields() -> None:
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "",
                                "name": "GET /",
                                "kind": 2,
                                "startTimeUnixNano": 1544712660000000000,
                                "endTimeUnixNano": "1544712661000000000",
                                "someFutureField": {"x": 1},
                            }
                        ]
                    }
                ]
            }
        ]
    }
    decoded = decode(Signal.TRACES, json.dumps(body).encode(), JSON)
    span = ExportTraceServiceRequest.FromString(decoded.payload).resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.span_id.hex() == "eee19b7ec3c1b174"
    assert span.parent_span_id == b""
    assert span.start_time_unix_nano == 1544712660000000000
    assert span.end_time_unix_nano == 1544712661000000000
    assert span.kind == 2


def test_empty_request_is_valid() -> None:
    assert decode(Signal.LOGS, b"", PROTOBUF).records == 0
    assert decode(Signal.METRICS, b"{}", JSON).records == 0


def test_malformed_protobuf_names_the_message() -> None:
    with pytest.raises(InvalidPayload, match=r"^malformed OTLP protobuf for ExportTraceServiceRequest: "):
        decode(Signal.TRACES, b"\x0a\xff\xff\xff\x0f garbage", PROTOBUF)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", r"^request body is not valid JSON: "),
        (b"\xff\xfe", r"^request body is not valid JSON: "),
        (b"[1, 2]", r"^OTLP/JSON body must be an object \(ExportTraceServiceRequest\), not list$"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",'
            b'"spanId": "eee19b7ec3c1b174", "startTimeUnixNano": "soon"}]}]}]}',
            r"^malformed OTLP/JSON for ExportTraceServiceRequest: .*startTimeUnixNano",
        ),
    ],
)
def test_malformed_json_says_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        decode(Signal.TRACES, body, JSON)


GOOD_SPAN = '{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "ok"}'


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"traceId": "xyz"}', r"spans\[1\]\.traceId: 'xyz' is not 32 hex characters$"),
        (
            '{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "zzzzzzzzzzzzzzzz"}',
            r"spans\[1\]\.spanId: 'zzzzzzzzzzzzzzzz' is not 16 hex",
        ),
        ('{"links": [{"span_id": 12}]}', r"spans\[1\]\.links\[0\]\.span_id: 12 is not 16 hex"),
    ],
)
def test_spans_with_malformed_ids_are_rejected_the_rest_accepted(bad: str, message: str) -> None:
    body = f'{{"resourceSpans": [{{"scopeSpans": [{{"spans": [{GOOD_SPAN}, {bad}, {GOOD_SPAN}]}}]}}]}}'
    decoded = decode(Signal.TRACES, body.encode(), JSON)
    assert decoded.records == 2
    assert decoded.rejected == 1
    assert re.search(
        r"^1 spans rejected for malformed ids; first: resourceSpans\[0\]\.scopeSpans\[0\]\." + message,
        decoded.message,
    ), decoded.message
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(decoded.payload)
    assert [s.name for s in request.resource_spans[0].scope_spans[0].spans] == ["ok", "ok"]
    assert (
        request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    )


def test_log_records_with_malformed_ids_are_rejected_and_exemplar_ids_named() -> None:
    logs = (
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": '
        b'[{"traceId": "abcd"}, {"body": {"stringValue": "x"}}]}]}]}'
    )
    decoded = decode(Signal.LOGS, logs, JSON)
    assert (decoded.records, decoded.rejected) == (1, 1)
    assert "resourceLogs[0].scopeLogs[0].logRecords[0].traceId: 'abcd'" in decoded.message
    metrics = (
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": {"dataPoints": '
        b'[{"asDouble": 1, "exemplars": [{"spanId": "0102"}]}]}}]}]}]}'
    )
    with pytest.raises(
        InvalidPayload, match=r"metrics\[0\]\.gauge\.dataPoints\[0\]\.exemplars\[0\]\.spanId: '0102'"
    ):
        decode(Signal.METRICS, metrics, JSON)


def test_gzip_and_limits() -> None:
    body = trace_request().SerializeToString()
    assert decompress(gzip.compress(body), "gzip", len(body)) == body
    assert decompress(body, None, len(body)) is body
    assert decompress(body, "identity", len(body)) is body
    with pytest.raises(RequestTooLarge, match=r"^request body exceeds 10 bytes after decompression"):
        decompress(gzip.compress(body), "gzip", 10)
    with pytest.raises(RequestTooLarge):
        decompress(body, None, 10)
    with pytest.raises(InvalidPayload, match=r"^gzip body is corrupt: "):
        decompress(b"not gzip at all", "gzip", 1000)
    with pytest.raises(InvalidPayload, match=r"^gzip body is truncated$"):
        decompress(gzip.compress(body)[:-12], "gzip", 10_000)
    with pytest.raises(UnsupportedEncoding, match=r"^unsupported content encoding 'br'; use gzip or none$"):
        decompress(body, "br", 10_000)


def test_responses() -> None:
    assert encode_response(Signal.TRACES, PROTOBUF) == b""
    assert json.loads(encode_response(Signal.TRACES, JSON)) == {}
    partial = ExportTraceServiceResponse.FromString(encode_response(Signal.TRACES, PROTOBUF, 2, "bad ids"))
    assert partial.partial_success.rejected_spans == 2
    assert partial.partial_success.error_message == "bad ids"
    logs = json.loads(encode_response(Signal.LOGS, JSON, 1, "x"))
    assert logs == {"partialSuccess": {"rejectedLogRecords": "1", "errorMessage": "x"}}
    assert (
        ExportLogsServiceResponse.FromString(encode_response(Signal.LOGS, PROTOBUF))
        == ExportLogsServiceResponse()
    )
