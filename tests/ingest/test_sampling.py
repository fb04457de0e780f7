"""Trace sampling inside the INSERT: errors and slow spans kept, the rest per trace, RED right by weight."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest import metrics
from ingest.pipeline import Pipeline
from ollystack.clickhouse import Backend, Signal
from ollystack.clickhouse.otlp import RANDOMNESS_BITS, frame, sample_threshold
from ollystack.telemetry.services import service_red
from tenants.logic import IngestPrincipal, TenantPolicy
from tests.ingest.conftest import BASE_NS, kv, logs_request, run_pipeline

RATE = 0.1
SLOW_MS = 1000
TRACES, SPANS_PER_TRACE = 2_500, 4  # 10 000 ordinary spans
ERROR_SPANS, SLOW_SPANS = 150, 250


def sampled_tenant(rate: float = RATE) -> IngestPrincipal:
    policy = TenantPolicy(trace_sample_rate=rate, trace_slow_threshold_ms=SLOW_MS)
    return IngestPrincipal(str(uuid.uuid4()), f"sampled-{uuid.uuid4().hex[:6]}", 1, policy)


def randomness(trace_id: bytes) -> int:
    """OpenTelemetry's trace randomness: the 56 low bits of the trace id."""
    return int.from_bytes(trace_id[-7:], "big")


def spans_request(trace_ids: list[bytes], *, status: int = 0, duration_ns: int = 1_000_000) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", "checkout"))
    ss = rs.scope_spans.add()
    for n, trace_id in enumerate(trace_ids):
        span = ss.spans.add(
            trace_id=trace_id,
            span_id=os.urandom(8),
            name="GET /cart",
            start_time_unix_nano=BASE_NS + n,
            end_time_unix_nano=BASE_NS + n + duration_ns,
        )
        span.status.code = status
    return req.SerializeToString()


@pytest.fixture
def traffic() -> dict[str, list[bytes]]:
    ordinary = [uuid.uuid4().bytes for _ in range(TRACES)]
    return {
        "ordinary": [t for t in ordinary for _ in range(SPANS_PER_TRACE)],
        "errors": [uuid.uuid4().bytes for _ in range(ERROR_SPANS)],
        "slow": [uuid.uuid4().bytes for _ in range(SLOW_SPANS)],
    }


def send(tmp_path: Path, backend: Backend, tenant: IngestPrincipal, traffic: dict[str, list[bytes]]) -> None:
    async def body(pipeline: Pipeline) -> None:
        ordinary = traffic["ordinary"]
        for start in range(0, len(ordinary), 1000):
            await pipeline.submit(Signal.TRACES, tenant, spans_request(ordinary[start : start + 1000]), 1000)
        errors = spans_request(traffic["errors"], status=2)
        await pipeline.submit(Signal.TRACES, tenant, errors, ERROR_SPANS)
        slow = spans_request(traffic["slow"], duration_ns=2 * SLOW_MS * 1_000_000)
        await pipeline.submit(Signal.TRACES, tenant, slow, SLOW_SPANS)

    run_pipeline(tmp_path, backend, body)


def stored_spans(backend: Backend, tenant: IngestPrincipal) -> list[tuple[bytes, int, int, float]]:
    result = backend.query(
        "SELECT trace_id, status_code, duration_ns, weight FROM spans WHERE tenant_id = {t:String}",
        {"t": tenant.tenant_id},
    )
    return [(t.encode("latin-1") if isinstance(t, str) else t, s, d, w) for t, s, d, w in result.rows]


def test_errors_and_slow_spans_are_kept_the_rest_per_trace_with_weights(
    tmp_path: Path, clickhouse: Backend, traffic: dict[str, list[bytes]]
) -> None:
    tenant = sampled_tenant()
    send(tmp_path, clickhouse, tenant, traffic)
    rows = stored_spans(clickhouse, tenant)

    errors = [r for r in rows if r[1] == 2]
    slow = [r for r in rows if r[2] >= SLOW_MS * 1_000_000]
    assert len(errors) == ERROR_SPANS
    assert {r[3] for r in errors} == {1.0}
    assert len(slow) == SLOW_SPANS
    assert {r[3] for r in slow} == {1.0}

    threshold = sample_threshold(RATE)
    expected = {t for t in traffic["ordinary"] if randomness(t) >= threshold}
    ordinary = [r for r in rows if r[1] != 2 and r[2] < SLOW_MS * 1_000_000]
    kept_traces = [r[0] for r in ordinary]
    # the decision is the trace's: every span of a kept trace is there, none of a dropped one
    assert set(kept_traces) == expected
    assert len(kept_traces) == len(expected) * SPANS_PER_TRACE
    weight = (1 << RANDOMNESS_BITS) / ((1 << RANDOMNESS_BITS) - threshold)
    assert {round(r[3], 9) for r in ordinary} == {round(weight, 9)}
    assert weight == pytest.approx(1 / RATE)
    assert 0.05 < len(expected) / TRACES < 0.15  # 10 % give or take the luck of 2 500 random trace ids

    sampled_out = metrics.REGISTRY.get_sample_value(
        "ollystack_ingest_sampled_out_records_total", {"tenant": tenant.tenant_name, "signal": "traces"}
    )
    assert sampled_out == TRACES * SPANS_PER_TRACE - len(kept_traces)
    written = metrics.REGISTRY.get_sample_value(
        "ollystack_ingest_written_records_total", {"tenant": tenant.tenant_name, "signal": "traces"}
    )
    assert written == len(rows)


def test_red_figures_sum_weights_so_they_stay_right_under_sampling(
    tmp_path: Path, clickhouse: Backend, traffic: dict[str, list[bytes]]
) -> None:
    tenant = sampled_tenant()
    send(tmp_path, clickhouse, tenant, traffic)
    rows = stored_spans(clickhouse, tenant)
    [red] = service_red(tenant.tenant_id, BASE_NS - 1, BASE_NS + 10**12)

    sent = TRACES * SPANS_PER_TRACE + ERROR_SPANS + SLOW_SPANS
    assert red.service == "checkout"
    assert red.requests == pytest.approx(sum(r[3] for r in rows))  # the aggregate is the sum of weights
    assert red.requests == pytest.approx(sent, rel=0.35)  # an unbiased estimate of what was sent
    assert len(rows) < sent / 3  # while far fewer spans are stored
    assert red.errors == ERROR_SPANS  # errors are never sampled: exact
    assert red.p50_ns == pytest.approx(1_000_000, rel=0.01)
    assert red.p99_ns >= SLOW_MS * 1_000_000  # the slow 2.4 % are all there, at weight 1


def test_unsampled_tenants_and_logs_keep_everything(tmp_path: Path, clickhouse: Backend) -> None:
    full = IngestPrincipal(str(uuid.uuid4()), "full", 1)  # default policy: rate 1
    sampled = sampled_tenant(rate=0.01)
    trace_ids = [uuid.uuid4().bytes for _ in range(500)]

    async def body(pipeline: Pipeline) -> None:
        await pipeline.submit(Signal.TRACES, full, spans_request(trace_ids), 500)
        await pipeline.submit(Signal.LOGS, sampled, logs_request(50).SerializeToString(), 51)

    run_pipeline(tmp_path, clickhouse, body)
    count = "SELECT count(), sum(weight) FROM spans WHERE tenant_id = {t:String}"
    assert clickhouse.query(count, {"t": full.tenant_id}).rows == [(500, 500.0)]
    logs = "SELECT count() FROM logs WHERE tenant_id = {t:String}"
    assert clickhouse.query(logs, {"t": sampled.tenant_id}).rows == [(51,)]


@pytest.mark.parametrize("rate", [1.0, 0.5, 0.1, 0.001, 1e-12])
def test_threshold_keeps_the_given_share_of_randomness(rate: float) -> None:
    threshold = sample_threshold(rate)
    kept_share = ((1 << RANDOMNESS_BITS) - threshold) / (1 << RANDOMNESS_BITS)
    assert kept_share == pytest.approx(rate, rel=1e-6, abs=2**-56)
    assert 0 <= threshold < 1 << RANDOMNESS_BITS


def test_a_replayed_segment_is_sampled_as_when_it_was_written(tmp_path: Path, clickhouse: Backend) -> None:
    tenant = sampled_tenant()
    trace_ids = [uuid.uuid4().bytes for _ in range(400)]
    threshold = sample_threshold(RATE)
    directory = tmp_path / "traces"
    directory.mkdir()
    data = frame(tenant.tenant_id, spans_request(trace_ids), threshold, SLOW_MS * 1_000_000)
    (directory / f"{uuid.uuid4().int % 10**20:020d}-1-{uuid.uuid4().hex[:8]}.seg").write_bytes(data)

    async def nothing(pipeline: Pipeline) -> None:
        return None

    run_pipeline(tmp_path, clickhouse, nothing)
    kept = {t for t in trace_ids if randomness(t) >= threshold}
    assert {r[0] for r in stored_spans(clickhouse, tenant)} == kept
