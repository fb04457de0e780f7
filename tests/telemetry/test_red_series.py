"""RED series on the embedded engine: bucket choice, exact per-bucket figures from both views, sampling
weights, top operations, and the slowest requests of a service."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from ollystack.clickhouse import Backend, Signal, get_backend, set_backend
from ollystack.clickhouse.otlp import RANDOMNESS_BITS, frame
from ollystack.clickhouse.views import DIGEST_RELATIVE_ERROR, SLOWEST_KEPT
from ollystack.telemetry.red_series import (
    Buckets,
    SlowRequest,
    buckets_for,
    operation_series,
    service_series,
    slowest_requests,
)
from tests.telemetry.test_trace_search import Recording

NS = 1_000_000_000
MS = 1_000_000
HOUR_S = 1_699_999_200  # 2023-11-14T22:00:00Z, an hour boundary
H = HOUR_S * NS
LONG_AFTER = H + 30 * 86400 * NS  # "now" for a range the per-second view no longer holds
SERVER, CLIENT = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT


def trace_id(n: int, sampled_in: bool = False) -> str:
    """Distinct ids; ``sampled_in``: the randomness (last 7 bytes) is the highest, so sampling keeps it."""
    return f"{n:018x}" + ("ff" * 7 if sampled_in else "00" * 7)


class Shop:
    """Requests frontend → payments; payments' ``charge`` may fail, and queries its database."""

    CLIENT = CLIENT

    def __init__(self) -> None:
        self.request = ExportTraceServiceRequest()
        self.scopes = {}
        for service in ("frontend", "payments"):
            rs = self.request.resource_spans.add()
            rs.resource.attributes.add(key="service.name").value.string_value = service
            self.scopes[service] = rs.scope_spans.add()

    def span(
        self, service: str, trace: str, n: int, parent: int, name: str, kind: int, at_ns: int, ms: int
    ) -> Span:
        return self.scopes[service].spans.add(
            trace_id=bytes.fromhex(trace),
            span_id=n.to_bytes(8, "big"),
            parent_span_id=parent.to_bytes(8, "big") if parent else b"",
            name=name,
            kind=kind,
            start_time_unix_nano=at_ns,
            end_time_unix_nano=at_ns + ms * MS,
        )

    def checkout(self, trace: str, at_ns: int, front_ms: int, charges: list[int], fail: bool = False) -> None:
        self.span("frontend", trace, 1, 0, "GET /checkout", SERVER, at_ns, front_ms)
        for i, ms in enumerate(charges):
            charge = self.span("payments", trace, 10 + i, 1, "charge", SERVER, at_ns + MS, ms)
            if fail:
                charge.status.code = Status.STATUS_CODE_ERROR


def insert(
    clickhouse: Backend, tmp_path: Path, tenant: str, request: ExportTraceServiceRequest, threshold: int = 0
) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.seg"
    path.write_bytes(frame(tenant, request.SerializeToString(), threshold=threshold))
    clickhouse.insert_otlp_segment(Signal.TRACES, path, path.stem, sampled=bool(threshold))


@pytest.fixture
def shop(clickhouse: Backend, tmp_path: Path, tenant_id: str) -> str:
    """Minute 0 (+10 s): three checkouts (frontend 100 ms, charge 40 ms), one declined. Minute 5 (+10 s):
    one checkout (frontend 300 ms) charged twice (200 ms, 150 ms), the first charge querying the database
    for 250 ms. Minute 2: a checkout stored with sampling weight 2 (frontend 50 ms)."""
    shop = Shop()
    for n in range(3):
        shop.checkout(trace_id(n), H + 10 * NS, 100, [40], fail=n == 1)
    shop.checkout(trace_id(5), H + 310 * NS, 300, [200, 150])
    shop.span("payments", trace_id(5), 20, 10, "SELECT cards", CLIENT, H + 311 * NS, 250)
    insert(clickhouse, tmp_path, tenant_id, shop.request)
    sampled = Shop()
    sampled.span("frontend", trace_id(2, sampled_in=True), 1, 0, "GET /checkout", SERVER, H + 130 * NS, 50)
    insert(clickhouse, tmp_path, tenant_id, sampled.request, threshold=1 << (RANDOMNESS_BITS - 1))
    return tenant_id


def test_the_step_keeps_charts_within_120_points() -> None:
    now = H + 3600 * NS
    assert buckets_for(now - 300 * NS, now, now) == Buckets(
        HOUR_S + 3300, 5, 60, "service_metrics_1s", now - 300 * NS, now
    )
    quarter = buckets_for(now - 900 * NS, now, now)
    assert (quarter.step_s, quarter.source, quarter.count) == (10, "service_metrics_1s", 90)
    half_hour = buckets_for(now - 1800 * NS, now, now)
    assert (half_hour.step_s, half_hour.source, half_hour.count) == (60, "service_metrics_1m", 30)
    hour = buckets_for(now - 3600 * NS, now, now)
    assert (hour.step_s, hour.source, hour.count) == (60, "service_metrics_1m", 60)
    day = buckets_for(now - 86400 * NS, now, now)
    assert (day.step_s, day.source, day.count) == (900, "service_metrics_1m", 96)
    week = buckets_for(now - 7 * 86400 * NS, now, now)
    assert (week.step_s, week.count) == (7200, 85)  # the range starts mid-bucket
    # ten minutes, two months ago: the per-second view has expired, so whole minutes
    old = buckets_for(H, H + 600 * NS, LONG_AFTER)
    assert (old.origin_s, old.step_s, old.count, old.source) == (HOUR_S, 60, 10, "service_metrics_1m")
    assert old.times()[:2] == [HOUR_S, HOUR_S + 60]
    # buckets align on the step: a range starting mid-bucket includes that whole bucket
    shifted = buckets_for(H + 30 * NS, H + 90 * NS, LONG_AFTER)
    assert (shifted.origin_s, shifted.count) == (HOUR_S, 2)
    assert shifted.covered_s == (60, 30)
    with pytest.raises(ValueError, match="ends before"):
        buckets_for(H, H - 1, LONG_AFTER)


def test_service_series_per_minute_sum_weights_and_count_entry_spans(shop: str) -> None:
    result = service_series(shop, H, H + 600 * NS, now_ns=LONG_AFTER)
    assert result.buckets.step_s == 60
    by_key = {s.key: s for s in result.series}
    assert sorted(by_key) == ["frontend", "payments"]
    front, pay = by_key["frontend"], by_key["payments"]
    assert front.requests == (3.0, 0.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    assert front.errors == (0.0,) * 10
    assert front.p95_ns[0] == pytest.approx(100 * MS, rel=DIGEST_RELATIVE_ERROR)
    assert front.p95_ns[2] == pytest.approx(50 * MS, rel=DIGEST_RELATIVE_ERROR)
    assert front.p95_ns[5] == pytest.approx(300 * MS, rel=DIGEST_RELATIVE_ERROR)
    assert front.p95_ns[1] is None
    assert front.p50_ns[1] is None
    # the database query is a client span: not a request payments served
    assert pay.requests == (3.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0)
    assert pay.errors == (1.0,) + (0.0,) * 9
    assert pay.p99_ns[0] == pytest.approx(40 * MS, rel=DIGEST_RELATIVE_ERROR)

    one = service_series(shop, H, H + 600 * NS, service="payments", now_ns=LONG_AFTER)
    assert [s.key for s in one.series] == ["payments"]
    assert one.series[0] == pay


def test_service_series_per_second_for_recent_short_ranges(shop: str) -> None:
    result = service_series(shop, H, H + 600 * NS, now_ns=H + 601 * NS)
    assert (result.buckets.source, result.buckets.step_s, result.buckets.count) == (
        "service_metrics_1s",
        5,
        120,
    )
    front = {s.key: s for s in result.series}["frontend"]
    expected = [0.0] * 120
    expected[2], expected[26], expected[62] = 3.0, 2.0, 1.0  # +10 s, +130 s, +310 s
    assert front.requests == tuple(expected)


def test_operation_series_keeps_the_busiest_operations(shop: str) -> None:
    result = operation_series(shop, "payments", H, H + 600 * NS, now_ns=LONG_AFTER)
    assert [s.key for s in result.series] == ["charge", "SELECT cards"]
    charge, query = result.series
    assert charge.requests[0] == 3.0
    assert charge.requests[5] == 2.0
    assert charge.errors[0] == 1.0
    assert query.requests[5] == 1.0
    assert query.p95_ns[5] == pytest.approx(250 * MS, rel=DIGEST_RELATIVE_ERROR)
    top = operation_series(shop, "payments", H, H + 600 * NS, top=1, now_ns=LONG_AFTER)
    assert [s.key for s in top.series] == ["charge"]
    assert operation_series(shop, "nobody", H, H + 600 * NS, now_ns=LONG_AFTER).series == ()


def test_slowest_requests_one_per_trace_longest_first(shop: str) -> None:
    slow = slowest_requests(shop, "payments", H, H + 600 * NS, limit=3)
    assert slow[0] == SlowRequest(
        trace_id(5), (10).to_bytes(8, "big").hex(), "charge", H + 310 * NS + MS, 200 * MS, False
    )
    assert [(s.trace_id, s.duration_ns) for s in slow[1:]] == [(trace_id(0), 40 * MS), (trace_id(1), 40 * MS)]
    assert slow[2].error is True
    front = slowest_requests(shop, "frontend", H + 60 * NS, H + 600 * NS)
    assert [(s.trace_id, s.duration_ns) for s in front] == [
        (trace_id(5), 300 * MS),
        (trace_id(2, sampled_in=True), 50 * MS),
    ]


def test_series_stay_inside_the_tenant(shop: str) -> None:
    other = str(uuid.uuid4())
    assert service_series(other, H, H + 600 * NS, now_ns=LONG_AFTER).series == ()
    assert slowest_requests(other, "payments", H, H + 600 * NS) == []


def test_slowest_requests_of_a_trace_entering_the_service_many_times(
    clickhouse: Backend, tmp_path: Path, tenant_id: str
) -> None:
    """25 charges in one trace fill the top-k candidates: the exact one-per-trace query finds the next."""
    shop = Shop()
    shop.checkout(trace_id(7), H, 900, [500 + i for i in range(25)])
    shop.checkout(trace_id(8), H, 100, [50])
    insert(clickhouse, tmp_path, tenant_id, shop.request)
    slow = slowest_requests(tenant_id, "payments", H, H + 60 * NS, limit=2)
    assert [(s.trace_id, s.duration_ns) for s in slow] == [(trace_id(7), 524 * MS), (trace_id(8), 50 * MS)]


def test_slowest_requests_come_from_the_view_up_to_what_it_keeps(shop: str) -> None:
    backend = get_backend()
    recording = Recording(backend)
    statements = recording.sql
    set_backend(recording)
    try:
        few = slowest_requests(shop, "payments", H, H + 600 * NS, limit=SLOWEST_KEPT)
        assert ["slowest_requests_1m" in sql for sql in statements] == [True]
        statements.clear()
        more = slowest_requests(shop, "payments", H, H + 600 * NS, limit=SLOWEST_KEPT + 1)
        assert ["FROM spans" in sql for sql in statements] == [True]
    finally:
        set_backend(backend)
    assert few == more[: len(few)]
    assert len(few) >= 3
