"""The WAL pipeline against the real embedded ClickHouse (and a real backend that cannot insert)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from ingest import metrics
from ingest import pipeline as pipeline_module
from ingest.pipeline import GROWTH_LIMIT, Backpressure, Pipeline, Throttled, valid_prefix_length
from ollystack.clickhouse import Backend, QueryError, Signal
from ollystack.clickhouse.otlp import frame
from tenants.logic import IngestPrincipal, TenantPolicy
from tests.ingest.conftest import logs_request, run_pipeline, trace_request

TABLES = {Signal.TRACES: "spans", Signal.LOGS: "logs"}


def principal(name: str = "acme") -> IngestPrincipal:
    return IngestPrincipal(tenant_id=str(uuid.uuid4()), tenant_name=name, key_id=1)


def stored(backend: Backend, signal: Signal, tenant: IngestPrincipal) -> int:
    result = backend.query(
        f"SELECT count() FROM {TABLES[signal]} WHERE tenant_id = {{tenant:String}}",
        {"tenant": tenant.tenant_id},
    )
    return int(result.rows[0][0])


def segments(wal_dir: Path, signal: Signal = Signal.TRACES) -> list[Path]:
    return sorted((wal_dir / signal.value).glob("*.seg"))


def test_valid_prefix_length_walks_whole_frames() -> None:
    one, two = frame("t", b"\x0a\x00"), frame("t", b"x" * 300)
    assert valid_prefix_length(one + two) == len(one + two)
    assert valid_prefix_length(one + two[:-1]) == len(one)
    assert valid_prefix_length(one + two[:1]) == len(one)  # half a varint
    assert valid_prefix_length(b"") == 0


def test_segments_are_sealed_by_rows(tmp_path: Path, clickhouse: Backend) -> None:
    tenant = principal()
    body = trace_request(spans=2).SerializeToString()

    async def body_fn(pipeline: Pipeline) -> None:
        for _ in range(3):  # 6 rows >= 5: sealed after the third request
            await pipeline.submit(Signal.TRACES, tenant, body, 2)
        await pipeline.submit(Signal.TRACES, tenant, body, 2)  # opens the next segment
        for _ in range(200):
            if pipeline.inserted_segments == 1:
                break
            await asyncio.sleep(0.01)
        assert pipeline.inserted_segments == 1
        assert pipeline.inserted_rows == 6
        assert len(segments(tmp_path)) == 1  # the open one; the sealed one was inserted and deleted

    pipeline = run_pipeline(tmp_path, clickhouse, body_fn, max_rows=5)
    assert pipeline.inserted_segments == 2  # stop sealed and flushed the last one
    assert stored(clickhouse, Signal.TRACES, tenant) == 8
    assert segments(tmp_path) == []
    assert pipeline.wal_bytes == 0


def test_segments_are_sealed_by_time(tmp_path: Path, clickhouse: Backend) -> None:
    tenant = principal()
    body = logs_request(records=1).SerializeToString()

    async def body_fn(pipeline: Pipeline) -> None:
        await pipeline.submit(Signal.LOGS, tenant, body, 2)
        for _ in range(300):
            if pipeline.inserted_segments:
                break
            await asyncio.sleep(0.01)
        assert pipeline.inserted_segments == 1
        assert stored(clickhouse, Signal.LOGS, tenant) == 2

    run_pipeline(tmp_path, clickhouse, body_fn, max_delay_ms=50)


def test_leftover_segments_are_replayed_in_order_with_torn_frame_cut(
    tmp_path: Path, clickhouse: Backend
) -> None:
    tenant = principal()
    directory = tmp_path / "traces"
    directory.mkdir()
    first = frame(tenant.tenant_id, trace_request(spans=1).SerializeToString())
    second = frame(tenant.tenant_id, trace_request(spans=2).SerializeToString())
    (directory / "00000000000000000001-1-aaaaaaaa.seg").write_bytes(first + second)
    torn = frame(tenant.tenant_id, trace_request(spans=4).SerializeToString())
    (directory / "00000000000000000002-1-bbbbbbbb.seg").write_bytes(second + torn[: len(torn) // 2])
    (directory / "00000000000000000003-1-cccccccc.seg").write_bytes(torn[:3])  # nothing whole: quarantined

    async def body_fn(pipeline: Pipeline) -> None:
        assert pipeline.recovered_segments == 2

    pipeline = run_pipeline(tmp_path, clickhouse, body_fn)
    assert pipeline.inserted_segments == 2
    assert pipeline.inserted_rows == 5
    assert stored(clickhouse, Signal.TRACES, tenant) == 5
    assert list(directory.iterdir()) == []
    quarantined = tmp_path / "quarantine" / "traces" / "00000000000000000003-1-cccccccc.seg"
    assert quarantined.read_bytes() == torn[:3]


def test_insert_deduplication_token_is_the_segment_file_name(tmp_path: Path, clickhouse: Backend) -> None:
    tenant = principal()
    data = frame(tenant.tenant_id, trace_request(spans=3).SerializeToString())
    directory = tmp_path / "traces"
    directory.mkdir()

    async def nothing(pipeline: Pipeline) -> None:
        return None

    name = f"{uuid.uuid4().int % 10**20:020d}-1-deadbeef.seg"
    (directory / name).write_bytes(data)
    run_pipeline(tmp_path, clickhouse, nothing)
    assert stored(clickhouse, Signal.TRACES, tenant) == 3
    (directory / name).write_bytes(data)  # a replay after a crash between insert and delete
    run_pipeline(tmp_path, clickhouse, nothing)
    assert stored(clickhouse, Signal.TRACES, tenant) == 3
    (directory / name.replace("deadbeef", "feedbeef")).write_bytes(data)  # same rows, other segment
    run_pipeline(tmp_path, clickhouse, nothing)
    assert stored(clickhouse, Signal.TRACES, tenant) == 6


def test_failed_insert_keeps_the_segment_and_retries(
    tmp_path: Path, unreachable_clickhouse: Backend, clickhouse: Backend
) -> None:
    tenant = principal()
    body = trace_request(spans=2).SerializeToString()

    async def body_fn(pipeline: Pipeline) -> None:
        await pipeline.submit(Signal.TRACES, tenant, body, 2)
        await asyncio.sleep(1.0)  # sealed after 20 ms, first attempt, retry after 0.5 s
        assert pipeline.insert_errors >= 2
        assert pipeline.inserted_segments == 0
        assert len(segments(tmp_path)) == 1

    failing = run_pipeline(tmp_path, unreachable_clickhouse, body_fn, max_delay_ms=20)
    assert failing.wal_bytes > 0
    assert len(segments(tmp_path)) == 1  # still there after stop: the next start inserts it

    async def nothing(pipeline: Pipeline) -> None:
        return None

    recovered = run_pipeline(tmp_path, clickhouse, nothing)
    assert recovered.inserted_rows == 2
    assert stored(clickhouse, Signal.TRACES, tenant) == 2
    assert segments(tmp_path) == []


def test_a_segment_clickhouse_keeps_refusing_is_quarantined_and_the_rest_goes_on(
    tmp_path: Path, clickhouse: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_module, "RETRY_INITIAL_SECONDS", 0.01)
    tenant = principal()
    directory = tmp_path / "traces"
    directory.mkdir()
    token = uuid.uuid4().hex[:8]  # segment names are insert deduplication tokens: unique per test run
    corrupt = frame(tenant.tenant_id, b"\x0a\x05\xff\xff\xff\xff\xff")  # whole frame, broken protobuf
    (directory / f"00000000000000000001-1-{token}.seg").write_bytes(corrupt)
    good = frame(tenant.tenant_id, trace_request(spans=2).SerializeToString())
    (directory / f"00000000000000000002-1-{token}.seg").write_bytes(good)
    before = metrics.REGISTRY.get_sample_value(
        "ollystack_ingest_wal_quarantined_segments_total", {"signal": "traces"}
    )

    async def wait_until_the_wal_is_empty(pipeline: Pipeline) -> None:
        for _ in range(200):
            if not segments(tmp_path):
                return
            await asyncio.sleep(0.02)

    pipeline = run_pipeline(tmp_path, clickhouse, wait_until_the_wal_is_empty)
    assert pipeline.insert_errors == pipeline_module.QUARANTINE_AFTER
    assert stored(clickhouse, Signal.TRACES, tenant) == 2
    assert list(directory.iterdir()) == []
    quarantined = tmp_path / "quarantine" / "traces" / f"00000000000000000001-1-{token}.seg"
    assert quarantined.read_bytes() == corrupt
    after = metrics.REGISTRY.get_sample_value(
        "ollystack_ingest_wal_quarantined_segments_total", {"signal": "traces"}
    )
    assert (after or 0) - (before or 0) == 1


def test_wal_age_is_the_oldest_waiting_segment(
    tmp_path: Path, unreachable_clickhouse: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = principal()

    async def body_fn(pipeline: Pipeline) -> None:
        assert pipeline.oldest_age()["traces"] == 0.0
        await pipeline.submit(Signal.TRACES, tenant, trace_request(spans=1).SerializeToString(), 1)
        await asyncio.sleep(0.3)
        age = metrics.REGISTRY.get_sample_value(
            "ollystack_ingest_wal_oldest_age_seconds", {"signal": "traces"}
        )
        assert age is not None
        assert 0.25 <= age < 5
        assert pipeline.oldest_age()["logs"] == 0.0

    run_pipeline(tmp_path, unreachable_clickhouse, body_fn, max_delay_ms=20)


def test_full_wal_answers_backpressure_and_one_tenant_is_throttled(
    tmp_path: Path, unreachable_clickhouse: Backend
) -> None:
    noisy, quiet = principal("noisy"), principal("quiet")
    body = trace_request(spans=1).SerializeToString()
    size = len(frame(noisy.tenant_id, body, retention_days=noisy.policy.retention_days_traces))

    async def body_fn(pipeline: Pipeline) -> None:
        await pipeline.submit(Signal.TRACES, noisy, body, 1)
        await pipeline.submit(Signal.TRACES, noisy, body, 1)
        with pytest.raises(Throttled, match=r"^tenant noisy has \d+ bytes waiting for storage") as throttled:
            await pipeline.submit(Signal.TRACES, noisy, body, 1)
        assert throttled.value.retry_after >= 1
        await pipeline.submit(Signal.LOGS, quiet, body, 1)
        await pipeline.submit(Signal.LOGS, quiet, body, 1)
        with pytest.raises(Backpressure, match=r"^ingest WAL is full \(\d+ of \d+ bytes\)") as full:
            await pipeline.submit(Signal.METRICS, principal("third"), body, 1)
        assert full.value.retry_after >= 1

    run_pipeline(tmp_path, unreachable_clickhouse, body_fn, max_wal_bytes=4 * size + 10, max_delay_ms=10)


def test_submit_after_stop_is_refused(tmp_path: Path, clickhouse: Backend) -> None:
    pipeline = run_pipeline(tmp_path, clickhouse, lambda p: asyncio.sleep(0))
    with pytest.raises(Backpressure, match="shutting down"):
        asyncio.run(pipeline.submit(Signal.TRACES, principal(), b"", 1))


class FailingWriter:
    """The real engine whose inserts fail while ``down`` is set (as when its disk is full): it still
    answers pings and parses segments, so nothing may be quarantined."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.down = True
        self.failures = 0

    def insert_segment_by_tenant(
        self, signal: Signal, path: Path, dedup_token: str, sampled: bool = False
    ) -> dict[str, int]:
        if self.down:
            self.failures += 1
            raise QueryError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space")
        return self.backend.insert_segment_by_tenant(signal, path, dedup_token, sampled)

    def ping(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)


def test_wal_absorbs_a_failing_writer_and_drains_exactly_once_when_it_recovers(
    tmp_path: Path, clickhouse: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_module, "RETRY_INITIAL_SECONDS", 0.01)
    monkeypatch.setattr(pipeline_module, "RETRY_MAX_SECONDS", 0.05)
    tenant = principal()
    writer = FailingWriter(clickhouse)

    async def body_fn(pipeline: Pipeline) -> None:
        for _ in range(10):
            await pipeline.submit(Signal.TRACES, tenant, trace_request(spans=3).SerializeToString(), 3)
            await asyncio.sleep(0.03)
        assert writer.failures > pipeline_module.QUARANTINE_AFTER  # retried, and checked, not quarantined
        assert len(segments(tmp_path)) >= 2
        assert pipeline.wal_bytes > 0
        assert stored(clickhouse, Signal.TRACES, tenant) == 0
        writer.down = False
        for _ in range(200):
            if not segments(tmp_path):
                break
            await asyncio.sleep(0.02)

    pipeline = run_pipeline(tmp_path, writer, body_fn, max_delay_ms=20)  # type: ignore[arg-type]
    assert stored(clickhouse, Signal.TRACES, tenant) == 30
    assert pipeline.wal_bytes == 0
    assert not (tmp_path / "quarantine").exists()


class GatedBackend:
    """The real engine, with inserts held at a gate so a test controls when the flushers are busy."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.gate = threading.Event()
        self.rows: list[int] = []

    def insert_segment_by_tenant(
        self, signal: Signal, path: Path, dedup_token: str, sampled: bool = False
    ) -> dict[str, int]:
        self.gate.wait(timeout=30)
        written = self.backend.insert_segment_by_tenant(signal, path, dedup_token, sampled)
        self.rows.append(sum(written.values()))
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)


def test_batches_grow_while_every_flusher_is_busy(tmp_path: Path, clickhouse: Backend) -> None:
    tenant = principal()
    body = trace_request(spans=2).SerializeToString()
    gated = GatedBackend(clickhouse)

    async def body_fn(pipeline: Pipeline) -> None:
        try:
            for _ in range(2 * 3):  # two due batches of 6 rows: each flusher takes one and waits at the gate
                await pipeline.submit(Signal.TRACES, tenant, body, 2)
            for _ in range(20):  # 40 more rows: due, but no flusher is free, so one segment keeps growing
                await pipeline.submit(Signal.TRACES, tenant, body, 2)
            assert len(segments(tmp_path)) == 3
        finally:
            gated.gate.set()

    run_pipeline(tmp_path, gated, body_fn, max_rows=5, insert_concurrency=2)  # type: ignore[arg-type]
    assert sorted(gated.rows) == [6, 6, 40]
    assert stored(clickhouse, Signal.TRACES, tenant) == 52


def test_a_due_batch_stops_growing_at_the_limit(tmp_path: Path, clickhouse: Backend) -> None:
    tenant = principal()
    body = trace_request(spans=1).SerializeToString()
    gated = GatedBackend(clickhouse)

    async def body_fn(pipeline: Pipeline) -> None:
        try:
            for _ in range(5 + 5 + 5 * GROWTH_LIMIT + 1):
                await pipeline.submit(Signal.TRACES, tenant, body, 1)
            # two segments for the busy flushers, one sealed at the growth limit, one open (last record)
            assert len(segments(tmp_path)) == 4
        finally:
            gated.gate.set()

    run_pipeline(tmp_path, gated, body_fn, max_rows=5, insert_concurrency=2)  # type: ignore[arg-type]
    assert sorted(gated.rows) == [1, 5, 5, 5 * GROWTH_LIMIT]


def test_records_storage_drops_are_counted_per_tenant(tmp_path: Path, clickhouse: Backend) -> None:
    tenant, other = principal(f"bad-{uuid.uuid4().hex[:6]}"), principal(f"good-{uuid.uuid4().hex[:6]}")
    request = trace_request(spans=3)
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01\x02\x03"  # not 16 bytes

    async def body_fn(pipeline: Pipeline) -> None:  # both tenants in one segment
        await pipeline.submit(Signal.TRACES, tenant, request.SerializeToString(), 3)
        await pipeline.submit(Signal.TRACES, other, trace_request(spans=4).SerializeToString(), 4)

    run_pipeline(tmp_path, clickhouse, body_fn)
    assert stored(clickhouse, Signal.TRACES, tenant) == 2

    def sample(name: str, who: IngestPrincipal, **labels: str) -> float | None:
        labels = {"tenant": who.tenant_name, "signal": "traces", **labels}
        return metrics.REGISTRY.get_sample_value(f"ollystack_ingest_{name}_total", labels)

    assert sample("rejected_records", tenant, reason="invalid_in_storage") == 1
    assert sample("written_records", tenant) == 2
    assert sample("rejected_records", other, reason="invalid_in_storage") is None
    assert sample("written_records", other) == 4


def test_each_row_carries_its_tenants_retention_for_the_signal(tmp_path: Path, clickhouse: Backend) -> None:
    policy = TenantPolicy(retention_days_traces=7, retention_days_logs=400, retention_days_metrics=90)
    custom = IngestPrincipal(str(uuid.uuid4()), "custom", 1, policy)
    default = principal()

    async def body_fn(pipeline: Pipeline) -> None:
        await pipeline.submit(Signal.TRACES, custom, trace_request(spans=2).SerializeToString(), 2)
        await pipeline.submit(Signal.LOGS, custom, logs_request(2).SerializeToString(), 3)
        await pipeline.submit(Signal.TRACES, default, trace_request(spans=1).SerializeToString(), 1)

    run_pipeline(tmp_path, clickhouse, body_fn)

    def retention(table: str, tenant: IngestPrincipal) -> list[tuple[int]]:
        sql = f"SELECT DISTINCT retention_days FROM {table} WHERE tenant_id = {{t:String}}"
        return clickhouse.query(sql, {"t": tenant.tenant_id}).rows

    assert retention("spans", custom) == [(7,)]
    assert retention("logs", custom) == [(400,)]
    assert retention("spans", default) == [(30,)]
