"""The OTLP/gRPC receiver over a real grpc.aio channel on a free port."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from ingest.auth import KeyCache
from ingest.grpc_server import RETRY_INFO_KEY, STATUS_DETAILS_KEY, build_server
from ingest.pipeline import Pipeline
from ingest.service import IngestService
from ollystack.clickhouse import Backend, Signal
from ollystack.clickhouse.otlp import frame
from tests.ingest.conftest import logs_request, metrics_request, trace_request
from tests.ingest.test_ingest_pipeline import stored

MAX = 256 * 1024
Scenario = Callable[[grpc.aio.Channel], Awaitable[None]]


def serve(tmp_path: Path, backend: Backend, scenario: Scenario, **pipeline_options: Any) -> None:
    keys = KeyCache(refresh_seconds=60)
    assert keys.refresh()
    options = {"max_rows": 10_000, "max_delay_ms": 20, **pipeline_options}
    pipeline = Pipeline(tmp_path / "wal", backend=backend, **options)

    async def main() -> None:
        await pipeline.start()
        server, port = build_server(IngestService(keys, pipeline, MAX), "127.0.0.1:0", MAX)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await scenario(channel)
        finally:
            await server.stop(1)
            await pipeline.stop()

    asyncio.run(main())


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@pytest.mark.django_db
def test_export_all_signals(tmp_path: Path, clickhouse: Backend, tenant_key: Any) -> None:
    key, tenant = tenant_key

    async def scenario(channel: grpc.aio.Channel) -> None:
        traces = trace_service_pb2_grpc.TraceServiceStub(channel)
        response = await traces.Export(trace_request(spans=4), metadata=bearer(key))
        assert response == trace_service_pb2.ExportTraceServiceResponse()
        logs = logs_service_pb2_grpc.LogsServiceStub(channel)
        response = await logs.Export(
            logs_request(records=1), metadata=bearer(key), compression=grpc.Compression.Gzip
        )
        assert response == logs_service_pb2.ExportLogsServiceResponse()
        metrics = metrics_service_pb2_grpc.MetricsServiceStub(channel)
        await metrics.Export(metrics_request(), metadata=bearer(key))

    serve(tmp_path, clickhouse, scenario)
    assert stored(clickhouse, Signal.TRACES, tenant) == 4
    assert stored(clickhouse, Signal.LOGS, tenant) == 2


@pytest.mark.django_db
def test_errors(tmp_path: Path, clickhouse: Backend, tenant_key: Any) -> None:
    key, _ = tenant_key

    async def scenario(channel: grpc.aio.Channel) -> None:
        traces = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await traces.Export(trace_request())
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert missing.value.details() == "missing Authorization: Bearer <ingest key> header"
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await traces.Export(trace_request(), metadata=bearer("olly_ing_nope"))
        assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert unknown.value.details() == "ingest key not recognised"

        raw = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.aio.AioRpcError) as malformed:
            await raw(b"\x0a\xff\xff\xff\x0f", metadata=bearer(key))
        assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert malformed.value.details().startswith("malformed OTLP protobuf for ExportTraceServiceRequest: ")

        with pytest.raises(grpc.aio.AioRpcError) as oversize:
            await raw(b"\x00" * (MAX + 1), metadata=bearer(key))
        assert oversize.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(await_trailers(oversize.value))
        assert STATUS_DETAILS_KEY not in trailers  # no RetryInfo: exporters do not retry it

        with pytest.raises(grpc.aio.AioRpcError) as inflated:
            await raw(b"\x00" * (MAX + 1), metadata=bearer(key), compression=grpc.Compression.Gzip)
        assert inflated.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    serve(tmp_path, clickhouse, scenario)


def await_trailers(error: grpc.aio.AioRpcError) -> list[tuple[str, Any]]:
    return list(error.trailing_metadata() or ())


@pytest.mark.django_db
def test_backpressure_is_unavailable_with_retry_info(
    tmp_path: Path, unreachable_clickhouse: Backend, tenant_key: Any
) -> None:
    key, tenant = tenant_key
    request = trace_request(spans=1)
    size = len(frame(tenant.tenant_id, request.SerializeToString(), retention_days=30))

    async def scenario(channel: grpc.aio.Channel) -> None:
        traces = trace_service_pb2_grpc.TraceServiceStub(channel)
        await traces.Export(request, metadata=bearer(key))
        with pytest.raises(grpc.aio.AioRpcError) as throttled:
            await traces.Export(request, metadata=bearer(key))
        assert throttled.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert retry_delay(throttled.value) >= 1
        with pytest.raises(grpc.aio.AioRpcError) as full:
            await traces.Export(request, metadata=bearer(key))
        assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # still this tenant's share first

    serve(tmp_path, unreachable_clickhouse, scenario, max_wal_bytes=2 * size + size // 2)

    async def full_scenario(channel: grpc.aio.Channel) -> None:
        traces = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as full:
            await traces.Export(request, metadata=bearer(key))
        assert full.value.code() == grpc.StatusCode.UNAVAILABLE
        assert full.value.details().startswith("ingest WAL is full")
        assert retry_delay(full.value) >= 1

    # the segment of the first run is still in the WAL (ClickHouse unreachable): the WAL is now full
    serve(tmp_path, unreachable_clickhouse, full_scenario, max_wal_bytes=size + size // 2)


def retry_delay(error: grpc.aio.AioRpcError) -> float:
    trailers = dict(await_trailers(error))
    status = status_pb2.Status.FromString(trailers[STATUS_DETAILS_KEY])
    assert status.code == error.code().value[0]
    assert status.message == error.details()
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    # the same delay as a bare RetryInfo trailer, where the OpenTelemetry Python exporter looks for it
    assert error_details_pb2.RetryInfo.FromString(trailers[RETRY_INFO_KEY]) == info
    return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
