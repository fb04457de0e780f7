"""Protocol-correct errors for bad requests, tenant isolation, and data surviving a restart."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.conftest import Server, make_server, wait_for

pytestmark = pytest.mark.e2e

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def trace_request(service: str, spans: int = 3) -> tuple[bytes, str]:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = service
    ss = rs.scope_spans.add()
    trace_id = os.urandom(16)
    now = time.time_ns()
    for i in range(spans):
        span = ss.spans.add(
            trace_id=trace_id,
            span_id=os.urandom(8),
            name=f"op-{i}",
            kind=2,
            start_time_unix_nano=now - 1_000_000,
            end_time_unix_nano=now,
        )
        span.attributes.add(key="i").value.int_value = i
    return req.SerializeToString(), trace_id.hex()


def grpc_export(server: Server, payload: bytes, key: str | None) -> ExportTraceServiceResponse:
    metadata = [("authorization", f"Bearer {key}")] if key else []
    with grpc.insecure_channel(server.otlp_grpc) as channel:
        call = channel.unary_unary(
            TRACE_EXPORT, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString
        )
        return call(payload, metadata=metadata, timeout=10)


def http_post(server: Server, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, Any]:
    req = urllib.request.Request(f"{server.otlp_http}{path}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers


def http_oversize_status(server: Server, path: str, length: int, headers: dict[str, str]) -> int:
    """Announce a body over the cap and send only its start: the server must answer 413 without reading it."""
    conn = http.client.HTTPConnection("127.0.0.1", server.ports["otlp_http"], timeout=30)
    try:
        conn.putrequest("POST", path)
        for name, value in {**headers, "Content-Length": str(length)}.items():
            conn.putheader(name, value)
        conn.endheaders(b"\x00" * 65536)
        return conn.getresponse().status
    finally:
        conn.close()


def stored_spans(server: Server, trace_id: str, api_key: str) -> int:
    status, body = server.get(f"/api/v1/traces/{trace_id}", api_key)
    return len(body["spans"]) if status == 200 else 0


def test_grpc_rejects_missing_wrong_and_revoked_keys(server: Server) -> None:
    payload, _ = trace_request("auth-check")
    with pytest.raises(grpc.RpcError) as missing:
        grpc_export(server, payload, None)
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Authorization" in missing.value.details()

    with pytest.raises(grpc.RpcError) as wrong:
        grpc_export(server, payload, "olly_ing_" + "x" * 43)
    assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "not recognised" in wrong.value.details()

    tenant = server.create_tenant("revoked-co")
    wait_for(lambda: _accepted(server, payload, tenant["ingest_key"]), timeout=10)
    server.manage("tenant", "revoke-key", tenant["ingest_key"][:16])

    def refused() -> bool:
        try:
            grpc_export(server, payload, tenant["ingest_key"])
        except grpc.RpcError as err:
            return err.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked" in (err.details() or "")
        return False

    wait_for(refused, timeout=10)


def _accepted(server: Server, payload: bytes, key: str) -> bool:
    try:
        grpc_export(server, payload, key)
        return True
    except grpc.RpcError:
        return False


def test_grpc_malformed_payload_is_invalid_argument_and_harmless(server: Server) -> None:
    key = server.bootstrap()["ingest_key"]
    with pytest.raises(grpc.RpcError) as bad:
        grpc_export(server, b"\x0a\xff\xff\xff\xff\x0f garbage", key)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportTraceServiceRequest" in bad.value.details()

    payload, trace_id = trace_request("after-bad-grpc")
    grpc_export(server, payload, key)
    wait_for(lambda: stored_spans(server, trace_id, server.bootstrap()["api_key"]) == 3)


def test_http_errors_are_protocol_correct(server: Server) -> None:
    key = server.bootstrap()["ingest_key"]
    proto = {"Content-Type": "application/x-protobuf"}
    payload, _ = trace_request("http-errors")

    status, _, _ = http_post(server, "/v1/traces", payload, proto)
    assert status == 401
    status, _, _ = http_post(
        server, "/v1/traces", payload, {**proto, "Authorization": "Bearer olly_ing_nope"}
    )
    assert status == 401

    auth = {"Authorization": f"Bearer {key}"}
    status, body, _ = http_post(server, "/v1/traces", b"\x0a\xff\xff\xff\xff\x0f", {**proto, **auth})
    assert status == 400
    assert b"ExportTraceServiceRequest" in body

    status, body, _ = http_post(
        server, "/v1/traces", b"{not json", {"Content-Type": "application/json", **auth}
    )
    assert status == 400
    assert b"JSON" in body

    good_trace = os.urandom(16).hex()
    mixed = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-mixed"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {"traceId": "xyz", "spanId": "0011223344556677", "name": "bad"},
                            {
                                "traceId": good_trace,
                                "spanId": "0011223344556677",
                                "name": "good",
                                "startTimeUnixNano": str(time.time_ns()),
                                "endTimeUnixNano": str(time.time_ns()),
                            },
                        ]
                    }
                ],
            }
        ]
    }
    status, body, _ = http_post(
        server, "/v1/traces", json.dumps(mixed).encode(), {"Content-Type": "application/json", **auth}
    )
    assert status == 200
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "spans[0].traceId: 'xyz' is not 32 hex characters" in partial["errorMessage"]
    wait_for(lambda: stored_spans(server, good_trace, server.bootstrap()["api_key"]) == 1)

    status, _, _ = http_post(server, "/v1/traces", payload, {"Content-Type": "text/plain", **auth})
    assert status == 415

    assert http_oversize_status(server, "/v1/traces", 16 * 1024 * 1024 + 1, {**proto, **auth}) == 413
    bomb = gzip.compress(b"\x00" * (17 * 1024 * 1024))
    status, _, _ = http_post(server, "/v1/traces", bomb, {**proto, **auth, "Content-Encoding": "gzip"})
    assert status == 413

    good, trace_id = trace_request("after-bad-http", spans=2)
    status, _, _ = http_post(
        server, "/v1/traces", gzip.compress(good), {**proto, **auth, "Content-Encoding": "gzip"}
    )
    assert status == 200
    wait_for(lambda: stored_spans(server, trace_id, server.bootstrap()["api_key"]) == 2)


def test_tenants_are_isolated(server: Server) -> None:
    a = server.create_tenant("iso-a")
    b = server.create_tenant("iso-b")
    payload, trace_id = trace_request("secret-service-a")
    wait_for(lambda: _accepted(server, payload, a["ingest_key"]), timeout=10)
    wait_for(lambda: stored_spans(server, trace_id, a["api_key"]) == 3)

    assert stored_spans(server, trace_id, b["api_key"]) == 0
    status, body = server.get(f"/api/v1/traces/{trace_id}", b["api_key"])
    assert status == 404, body
    services_b = [s["service"] for s in server.api("/api/v1/services?start=0", b["api_key"])["services"]]
    assert "secret-service-a" not in services_b
    services_a = [s["service"] for s in server.api("/api/v1/services?start=0", a["api_key"])["services"]]
    assert "secret-service-a" in services_a
    status, _body = server.get(f"/api/v1/traces/{trace_id}", a["ingest_key"])
    assert status == 401, "an ingest key must not read"


def test_restart_keeps_data_and_credentials(tmp_path: Path) -> None:
    srv = make_server(tmp_path / "var")
    srv.start()
    try:
        first = srv.bootstrap()
        assert first["admin_password"] in srv.log_text(), "first start prints the admin password once"
        payload, trace_id = trace_request("survivor", spans=4)
        grpc_export(srv, payload, first["ingest_key"])
    finally:
        assert srv.stop() == 0, srv.output[-1]
    # The ack came before the insert: a clean stop must still have flushed it.
    srv.start()
    try:
        assert srv.bootstrap() == first
        assert first["admin_password"] not in srv.log_text(), "credentials are printed only on first start"
        wait_for(lambda: stored_spans(srv, trace_id, first["api_key"]) == 4)
    finally:
        assert srv.stop() == 0


def test_engine_commands_say_the_engine_is_busy_while_serve_runs(server: Server) -> None:
    done = server.manage("migrate_clickhouse", check=False)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "in use by another OllyStack process" in message, message
    assert "Traceback" not in message

    # Tenants live in the Django database: managing them works while serve runs.
    listed = server.manage("tenant", "list", "--json")
    assert "default" in {t["name"] for t in json.loads(listed.stdout)}
