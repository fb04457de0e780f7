"""The OTLP/HTTP receiver, driven in-process through its ASGI interface, for every status code."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest.auth import KeyCache
from ingest.http_server import OtlpHttpApp
from ingest.pipeline import Pipeline
from ingest.service import IngestService
from ollystack.clickhouse import Backend, Signal
from ollystack.clickhouse.otlp import frame
from tenants import logic
from tests.ingest.conftest import logs_request, metrics_request, trace_request
from tests.ingest.test_ingest_otlp import otlp_json
from tests.ingest.test_ingest_pipeline import stored

PB = "application/x-protobuf"
MAX = 64 * 1024


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, reads: int) -> None:
        self.status, self.headers, self.body, self.reads = status, headers, body, reads

    def status_message(self) -> status_pb2.Status:
        if self.headers["content-type"] == "application/json":
            return status_pb2.Status(**json.loads(self.body))
        return status_pb2.Status.FromString(self.body)


async def call(
    app: OtlpHttpApp,
    path: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    chunk: int = 0,
) -> Response:
    """Run one request through the ASGI app; ``chunk`` splits the body into several receive messages."""
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads <= len(pieces):
            return {"type": "http.request", "body": pieces[reads - 1], "more_body": reads < len(pieces)}
        return {"type": "http.disconnect"}

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    await app(scope, receive, send)
    start, end = sent
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return Response(start["status"], response_headers, end["body"], reads)


Scenario = Callable[[OtlpHttpApp], Awaitable[None]]


def serve(tmp_path: Path, backend: Backend, scenario: Scenario, **pipeline_options: Any) -> None:
    keys = KeyCache(refresh_seconds=60)
    assert keys.refresh()
    options = {"max_rows": 10_000, "max_delay_ms": 20, **pipeline_options}
    pipeline = Pipeline(tmp_path / "wal", backend=backend, **options)
    app = OtlpHttpApp(IngestService(keys, pipeline, MAX), MAX)

    async def main() -> None:
        await pipeline.start()
        try:
            await scenario(app)
        finally:
            await pipeline.stop()

    asyncio.run(main())


def auth(key: str, content_type: str = PB, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "content-type": content_type, **extra}


@pytest.mark.django_db
def test_accepts_protobuf_json_and_gzip(tmp_path: Path, clickhouse: Backend, tenant_key: Any) -> None:
    key, tenant = tenant_key

    async def scenario(app: OtlpHttpApp) -> None:
        traces = await call(app, "/v1/traces", trace_request(spans=3).SerializeToString(), headers=auth(key))
        assert traces.status == 200
        assert traces.headers["content-type"] == PB
        assert ExportTraceServiceResponse.FromString(traces.body) == ExportTraceServiceResponse()
        logs = await call(
            app,
            "/v1/logs",
            otlp_json(logs_request(records=2)),
            headers=auth(key, "application/json; charset=utf-8"),
        )
        assert logs.status == 200
        assert logs.headers["content-type"] == "application/json"
        assert json.loads(logs.body) == {}
        body = gzip.compress(metrics_request().SerializeToString())
        metrics = await call(
            app, "/v1/metrics/", body, headers=auth(key, **{"content-encoding": "gzip"}), chunk=100
        )
        assert metrics.status == 200

    serve(tmp_path, clickhouse, scenario)
    assert stored(clickhouse, Signal.TRACES, tenant) == 3
    assert stored(clickhouse, Signal.LOGS, tenant) == 3


@pytest.mark.django_db
def test_authentication_errors(tmp_path: Path, clickhouse: Backend, tenant_key: Any) -> None:
    key, _ = tenant_key
    revoked = logic.issue_ingest_key(tenant_key[1].tenant_id, "old").raw
    logic.revoke_key(revoked)
    body = trace_request().SerializeToString()

    async def scenario(app: OtlpHttpApp) -> None:
        missing = await call(app, "/v1/traces", body, headers={"content-type": PB})
        assert missing.status == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.status_message().message == "missing Authorization: Bearer <ingest key> header"
        assert missing.status_message().code == 16  # UNAUTHENTICATED
        unknown = await call(app, "/v1/traces", body, headers=auth(key + "x"))
        assert unknown.status == 401
        assert unknown.status_message().message == "ingest key not recognised"
        gone = await call(app, "/v1/traces", body, headers=auth(revoked))
        assert gone.status == 401
        assert gone.status_message().message == f"ingest key {logic.display_prefix(revoked)}… was revoked"
        assert unknown.reads == 0  # refused before reading the body

    serve(tmp_path, clickhouse, scenario)


@pytest.mark.django_db
def test_request_errors(tmp_path: Path, clickhouse: Backend, tenant_key: Any) -> None:
    key, _ = tenant_key

    async def scenario(app: OtlpHttpApp) -> None:
        bad = await call(app, "/v1/traces", b"\x0a\xff\xff\xff\x0f", headers=auth(key))
        assert bad.status == 400
        assert bad.status_message().message.startswith(
            "malformed OTLP protobuf for ExportTraceServiceRequest"
        )
        assert bad.status_message().code == 3  # INVALID_ARGUMENT
        bad_json = await call(
            app,
            "/v1/traces",
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
            headers=auth(key, "application/json"),
        )
        assert bad_json.status == 200  # OTLP partial success: nothing accepted, and it says why
        assert bad_json.headers["content-type"] == "application/json"
        partial = json.loads(bad_json.body)["partialSuccess"]
        assert partial["rejectedSpans"] == "1"
        assert partial["errorMessage"] == (
            "1 spans rejected for malformed ids; first: "
            "resourceSpans[0].scopeSpans[0].spans[0].traceId: 'xyz' is not 32 hex characters"
        )
        nowhere = await call(app, "/v1/profiles", b"", headers=auth(key))
        assert nowhere.status == 404
        assert "use /v1/traces, /v1/logs or /v1/metrics" in nowhere.status_message().message
        get = await call(app, "/v1/traces", method="GET", headers=auth(key))
        assert get.status == 405
        assert get.headers["allow"] == "POST"
        text = await call(app, "/v1/traces", b"hi", headers=auth(key, "text/plain"))
        assert text.status == 415
        assert text.status_message().message == (
            "unsupported Content-Type 'text/plain'; use application/x-protobuf or application/json"
        )
        brotli = await call(app, "/v1/traces", b"x", headers=auth(key, **{"content-encoding": "br"}))
        assert brotli.status == 415
        assert brotli.status_message().message == "unsupported content encoding 'br'; use gzip or none"

    serve(tmp_path, clickhouse, scenario)


@pytest.mark.django_db
def test_oversize_bodies_are_413_without_reading_them_whole(
    tmp_path: Path, clickhouse: Backend, tenant_key: Any
) -> None:
    key, _ = tenant_key
    big = b"\x00" * (MAX * 4)

    async def scenario(app: OtlpHttpApp) -> None:
        declared = await call(app, "/v1/logs", big, headers=auth(key, **{"content-length": str(len(big))}))
        assert declared.status == 413
        assert declared.reads == 0
        assert declared.status_message().message.startswith(f"request body exceeds {MAX} bytes")
        streamed = await call(app, "/v1/logs", big, headers=auth(key), chunk=MAX // 4)
        assert streamed.status == 413
        assert streamed.reads == 5  # stopped at the first chunk past the limit, of 16
        bomb = gzip.compress(big)
        inflated = await call(app, "/v1/logs", bomb, headers=auth(key, **{"content-encoding": "gzip"}))
        assert inflated.status == 413

    serve(tmp_path, clickhouse, scenario)


@pytest.mark.django_db
def test_retryable_errors_carry_retry_after(
    tmp_path: Path, unreachable_clickhouse: Backend, tenant_key: Any
) -> None:
    key, tenant = tenant_key
    body = trace_request(spans=1).SerializeToString()
    size = len(frame(tenant.tenant_id, body, retention_days=30))

    async def scenario(app: OtlpHttpApp) -> None:
        assert (await call(app, "/v1/traces", body, headers=auth(key))).status == 200
        throttled = await call(app, "/v1/traces", body, headers=auth(key))
        assert throttled.status == 429
        assert int(throttled.headers["retry-after"]) >= 1
        assert throttled.status_message().code == 8  # RESOURCE_EXHAUSTED
        assert throttled.status_message().message.startswith(f"tenant {tenant.tenant_name} has")
        other = logic.IngestPrincipal("other-tenant", "other", 0)
        await app.service.pipeline.submit(Signal.LOGS, other, body, 1)
        full = await call(app, "/v1/traces", body, headers=auth(key))
        assert full.status == 503
        assert int(full.headers["retry-after"]) >= 1
        assert full.status_message().code == 14  # UNAVAILABLE
        assert full.status_message().message.startswith("ingest WAL is full")

    serve(tmp_path, unreachable_clickhouse, scenario, max_wal_bytes=2 * size + size // 2)
