"""Quotas seen by a sender: the real gRPC and HTTP receivers answer RESOURCE_EXHAUSTED / 429 with a delay."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from ingest import metrics
from ingest.auth import KeyCache
from ingest.grpc_server import build_server
from ingest.http_server import OtlpHttpApp
from ingest.pipeline import Pipeline
from ingest.quotas import LocalQuotaStore, seconds_to_midnight
from ingest.service import IngestService
from ollystack.clickhouse import Backend, Signal
from ollystack.clickhouse.otlp import frame
from tenants import logic
from tenants.logic import TenantPolicy
from tests.ingest.conftest import trace_request
from tests.ingest.test_ingest_grpc import bearer, retry_delay
from tests.ingest.test_ingest_http import auth, call
from tests.ingest.test_ingest_pipeline import stored

MAX = 256 * 1024
Scenario = Callable[[grpc.aio.Channel, OtlpHttpApp], Awaitable[None]]


def serve(
    tmp_path: Path, backend: Backend, store: LocalQuotaStore, scenario: Scenario, **options: Any
) -> None:
    """Both receivers on one service, as ``serve`` and ``ingestd`` run them."""
    keys = KeyCache(refresh_seconds=60, snapshot_path=tmp_path / "config-snapshot.json")
    assert keys.refresh()
    pipeline = Pipeline(
        tmp_path / "wal", backend=backend, **{"max_rows": 10_000, "max_delay_ms": 20, **options}
    )
    service = IngestService(keys, pipeline, MAX, quotas=store)

    async def main() -> None:
        await pipeline.start()
        server, port = build_server(service, "127.0.0.1:0", MAX)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await scenario(channel, OtlpHttpApp(service, MAX))
        finally:
            await server.stop(1)
            await pipeline.stop()
            await service.stop()

    asyncio.run(main())


def rejected(tenant: str, reason: str) -> float:
    labels = {"tenant": tenant, "signal": "traces", "reason": reason}
    return metrics.REGISTRY.get_sample_value("ollystack_ingest_rejected_records_total", labels) or 0


def usage_gauge(tenant: str) -> float | None:
    return metrics.REGISTRY.get_sample_value("ollystack_ingest_usage_today_records", {"tenant": tenant})


@pytest.mark.django_db
def test_rate_limit_over_grpc_and_http(tmp_path: Path, clickhouse: Backend, tenant_key: Any) -> None:
    key, tenant = tenant_key
    logic.set_tenant_policy(tenant.tenant_id, TenantPolicy(rate_limit_per_second=1, burst=3))
    body = trace_request(spans=3).SerializeToString()
    expected = f"tenant {tenant.tenant_name} is over its rate limit of 1 records/s (burst 3); retry in "

    async def scenario(channel: grpc.aio.Channel, app: OtlpHttpApp) -> None:
        traces = trace_service_pb2_grpc.TraceServiceStub(channel)
        await traces.Export(trace_request(spans=3), metadata=bearer(key))
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await traces.Export(trace_request(spans=3), metadata=bearer(key))
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert limited.value.details().startswith(expected)
        assert 2.5 < retry_delay(limited.value) <= 3.0  # one token per second, three needed

        response = await call(app, "/v1/traces", body, headers=auth(key))
        assert response.status == 429
        assert response.headers["retry-after"] == "3"
        assert response.status_message().code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert response.status_message().message.startswith(expected)

    serve(tmp_path, clickhouse, LocalQuotaStore(), scenario)
    assert rejected(tenant.tenant_name, "rate_limited") == 6
    assert usage_gauge(tenant.tenant_name) == 3
    assert stored(clickhouse, Signal.TRACES, tenant) == 3


@pytest.mark.django_db
def test_daily_cap_over_http_and_grpc(tmp_path: Path, clickhouse: Backend, tenant_key: Any) -> None:
    key, tenant = tenant_key
    logic.set_tenant_policy(tenant.tenant_id, TenantPolicy(daily_records_cap=4))
    body = trace_request(spans=3).SerializeToString()
    store = LocalQuotaStore()

    async def scenario(channel: grpc.aio.Channel, app: OtlpHttpApp) -> None:
        assert (await call(app, "/v1/traces", body, headers=auth(key))).status == 200
        capped = await call(app, "/v1/traces", body, headers=auth(key))
        assert capped.status == 429
        assert abs(int(capped.headers["retry-after"]) - math.ceil(seconds_to_midnight(time.time()))) <= 2
        assert capped.status_message().message.startswith(
            f"tenant {tenant.tenant_name} would exceed its daily cap of 4 records (3 used today, "
            "this request has 3); the cap resets at 00:00 UTC, retry in "
        )
        traces = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as grpc_capped:
            await traces.Export(trace_request(spans=3), metadata=bearer(key))
        assert grpc_capped.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert abs(retry_delay(grpc_capped.value) - seconds_to_midnight(time.time())) <= 2
        await traces.Export(trace_request(spans=1), metadata=bearer(key))  # still fits

    serve(tmp_path, clickhouse, store, scenario)
    assert rejected(tenant.tenant_name, "daily_cap") == 6
    assert store.usage(tenant.tenant_id).records == 4
    assert stored(clickhouse, Signal.TRACES, tenant) == 4


@pytest.mark.django_db
def test_a_request_the_wal_refuses_is_not_counted(
    tmp_path: Path, unreachable_clickhouse: Backend, tenant_key: Any
) -> None:
    key, tenant = tenant_key
    body = trace_request(spans=2).SerializeToString()
    size = len(frame(tenant.tenant_id, body))
    store = LocalQuotaStore()

    async def scenario(channel: grpc.aio.Channel, app: OtlpHttpApp) -> None:
        assert (await call(app, "/v1/traces", body, headers=auth(key))).status == 200
        throttled = await call(app, "/v1/traces", body, headers=auth(key))  # over its WAL share
        assert throttled.status == 429
        assert throttled.status_message().message.startswith(f"tenant {tenant.tenant_name} has")

    serve(tmp_path, unreachable_clickhouse, store, scenario, max_wal_bytes=2 * size + size // 2)
    usage = store.usage(tenant.tenant_id)
    assert (usage.records, usage.bytes) == (2, len(body))
