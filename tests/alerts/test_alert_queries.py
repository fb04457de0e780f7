"""The statements alert rules are evaluated on, against known data: windows to the second, figures, history,
log matches, and rules of several tenants in one statement each meeting only their tenant's rows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ollystack.clickhouse import Backend, Signal, get_backend, set_backend
from ollystack.clickhouse.backends import Params, QueryResult, Settings
from ollystack.clickhouse.views import DIGEST_RELATIVE_ERROR
from ollystack.telemetry import alert_queries as aq
from ollystack.telemetry.alert_queries import LogRule, RedRule

NS = 1_000_000_000
MS = 1_000_000
SERVER, INTERNAL = 2, 1


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


class Spans:
    def __init__(self) -> None:
        self.req = ExportTraceServiceRequest()
        self._scopes: dict[str, Any] = {}

    def add(
        self,
        service: str,
        at_ns: int,
        *,
        name: str = "GET /items",
        duration_ms: float = 10,
        error: bool = False,
        kind: int = SERVER,
        parent: bytes = b"",
        count: int = 1,
    ) -> Spans:
        if service not in self._scopes:
            rs = self.req.resource_spans.add()
            rs.resource.attributes.append(kv("service.name", service))
            self._scopes[service] = rs.scope_spans.add()
        for _ in range(count):
            span = self._scopes[service].spans.add(
                trace_id=uuid.uuid4().bytes,
                span_id=uuid.uuid4().bytes[:8],
                parent_span_id=parent,
                name=name,
                kind=kind,
                start_time_unix_nano=at_ns,
                end_time_unix_nano=at_ns + int(duration_ms * MS),
            )
            if error:
                span.status.code = 2
        return self


def logs(service: str, *records: tuple[int, int, str]) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", service))
    scope = rl.scope_logs.add()
    for at_ns, severity, body in records:
        scope.log_records.add(time_unix_nano=at_ns, severity_number=severity).body.string_value = body
    return req


class Recording(Backend):
    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.statements: list[tuple[str, dict[str, Any]]] = []

    def query(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> QueryResult:
        self.statements.append((sql, dict(params or {})))
        return self.inner.query(sql, params, settings)


@pytest.fixture
def recording(clickhouse: Backend) -> Iterator[Recording]:
    backend = Recording(get_backend())
    set_backend(backend)
    try:
        yield backend
    finally:
        set_backend(backend.inner)


@pytest.fixture
def now_ns() -> int:
    """The evaluated second, a little in the past so that every second of the data below is complete."""
    return (time.time_ns() // NS - 30) * NS + 500 * MS


def test_red_windows_count_to_the_second(
    tenant_id: str, insert_requests: Callable[..., int], now_ns: int
) -> None:
    second = now_ns // NS * NS
    spans = Spans()
    spans.add("api", second - 20 * NS, count=10, duration_ms=10)  # outside a 10 s window
    spans.add("api", second - 9 * NS, count=4, duration_ms=100)  # first second of a 10 s window
    spans.add("api", second + 700 * MS, count=4, error=True, duration_ms=300)  # the evaluated second
    spans.add("api", second + NS, count=50)  # after it: not yet
    spans.add("api", second - 5 * NS, name="SELECT", kind=INTERNAL, parent=b"12345678", count=3, error=True)
    insert_requests(Signal.TRACES, (tenant_id, spans.req))

    rules = [
        RedRule(1, "api", figure="error_rate", window_seconds=10),
        RedRule(2, "api", figure="request_rate", window_seconds=30),
        RedRule(3, "api", figure="latency", quantile=0.5, window_seconds=10),
        RedRule(4, "api", figure="latency", quantile=0.99, window_seconds=1),
        RedRule(5, "api", operation="SELECT", figure="error_rate", window_seconds=10),
        RedRule(6, "other", figure="error_rate", window_seconds=10),
        RedRule(7, "api", figure="error_rate", window_seconds=1),
    ]
    found = {w.rule_id: w for w in aq.red_windows(tenant_id, rules, now_ns)}
    assert set(found) == {1, 2, 3, 4, 5, 7}  # no data for "other"
    values = {r.rule_id: aq.red_value(r, found.get(r.rule_id)) for r in rules}
    assert (found[1].requests, found[1].errors) == (8, 4)  # entry spans only: not the SELECT
    assert values[1] == 0.5
    assert values[2] == pytest.approx(18 / 30)
    low, high = 100 * (1 - DIGEST_RELATIVE_ERROR), 300 * (1 + DIGEST_RELATIVE_ERROR)  # the sketch's rounding
    assert low <= values[3] <= high  # type: ignore[operator]
    assert values[4] == pytest.approx(300, rel=0.01)
    assert values[5] == 1.0  # an operation: its spans, entry or not
    assert values[6] == 0.0
    assert found.get(6) is None
    assert values[7] == 1.0  # the burst, in the second it happened
    assert found[1].last_seen_ns == second
    assert aq.red_value(RedRule(8, "gone", figure="latency"), None) is None


def test_rules_of_many_tenants_in_one_statement_see_only_their_tenant(
    insert_requests: Callable[..., int], now_ns: int, recording: Recording
) -> None:
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    second = now_ns // NS * NS
    insert_requests(
        Signal.TRACES,
        (a, Spans().add("api", second, count=10, error=True).req),
        (b, Spans().add("api", second, count=4).req),
    )
    rules = {
        a: [RedRule(1, "api", window_seconds=5), RedRule(2, "api", figure="latency", quantile=0.9)],
        b: [RedRule(3, "api", window_seconds=5), RedRule(4, "api", figure="latency", quantile=0.75)],
        c: [RedRule(5, "api", window_seconds=5)],  # a tenant with no data, same service name
    }
    recording.statements.clear()
    found = {w.rule_id: w for w in aq.red_windows_of_tenants(rules, now_ns)}
    assert len(recording.statements) == 1
    sql, params = recording.statements[0]
    assert "m.tenant_id IN {tenant_ids:Array(String)}" in sql
    assert sorted(params["tenant_ids"]) == sorted([a, b, c])
    assert (found[1].requests, found[1].errors) == (10, 10)
    assert (found[3].requests, found[3].errors) == (4, 0)
    assert found[2].latency_ms == pytest.approx(10, rel=0.01)
    assert 5 not in found
    # one tenant's reader binds that tenant, whichever rules it is given
    assert aq.red_windows(c, rules[a], now_ns) == []
    with pytest.raises(ValueError, match="tenant"):
        aq.red_windows_of_tenants({"": rules[a]}, now_ns)


def test_history_is_the_hour_before_the_window(
    tenant_id: str, insert_requests: Callable[..., int], now_ns: int
) -> None:
    minute = now_ns // NS // 60 * 60 * NS
    spans = Spans()
    for m in range(2, 32):  # 30 minutes of 10 requests, 1 to 3 errors, before the current minute
        spans.add("api", minute - m * 60 * NS + 5 * NS, count=10 - m % 3 - 1)
        spans.add("api", minute - m * 60 * NS + 6 * NS, count=m % 3 + 1, error=True)
    spans.add("api", minute - 2 * 3600 * NS, count=100, error=True)  # older than the hour
    insert_requests(Signal.TRACES, (tenant_id, spans.req))
    window = 60 + now_ns // NS % 60  # starts at the beginning of the last whole minute
    rules = [
        RedRule(1, "api", figure="error_rate", window_seconds=window),
        RedRule(2, "api", figure="request_rate", window_seconds=window),
    ]
    history = {h.rule_id: h for h in aq.red_history(tenant_id, rules, now_ns)}
    rates = history[1].values
    assert len(rates) == 30
    assert sorted(set(rates)) == [0.1, 0.2, 0.3]
    assert history[1].mean == pytest.approx(0.2)
    assert history[1].z_score(0.9) == pytest.approx((0.9 - 0.2) / history[1].stddev)
    assert history[2].values == (10 / 60,) * 30
    # a steady figure: the deviation is floored at 1 % of the mean
    assert history[2].z_score(11 / 60) == pytest.approx((1 / 60) / (10 / 60 * 0.01))
    assert aq.History(3, "api", (1.0, 2.0)).z_score(100) == 0.0  # too little history
    assert aq.red_history(str(uuid.uuid4()), rules, now_ns) == []


def test_log_windows_match_words_severity_and_window(
    insert_requests: Callable[..., int], now_ns: int, recording: Recording
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    second = now_ns // NS * NS
    insert_requests(
        Signal.LOGS,
        (
            a,
            logs(
                "api",
                (second - 30 * NS, 17, "payment failed for order 1"),
                (second - 3 * NS, 17, "payment failed for order 2"),
                (second + 200 * MS, 9, "payment failed for order 3 (retried)"),
                (second - 2 * NS, 17, "payments are slow"),
            ),
        ),
        (b, logs("api", (second, 17, "payment failed for order 4"))),
    )
    rules = [
        LogRule(1, "payment failed", window_seconds=5),
        LogRule(2, "payment failed", min_severity=17, window_seconds=60),
        LogRule(3, "", window_seconds=5),
        LogRule(4, "refund", window_seconds=60),
        LogRule(5, "failed payment", window_seconds=60),  # the words, but not as this phrase
    ]
    found = {w.rule_id: w for w in aq.log_windows(a, rules, now_ns)}
    assert set(found) == {1, 2, 3}
    assert (found[1].records, found[1].example) == (2, "payment failed for order 3 (retried)")
    assert found[1].last_seen_ns == second + 200 * MS
    assert found[2].records == 2
    assert found[3].records == 3

    many = {a: [LogRule(i, "payment", window_seconds=60) for i in range(60)], b: [LogRule(100, "payment")]}
    recording.statements.clear()
    counts = {w.rule_id: w.records for w in aq.log_windows_of_tenants(many, now_ns)}
    assert len(recording.statements) == 1  # 61 rules: one scan (LOG_RULES_PER_STATEMENT = 200)
    assert counts == {**dict.fromkeys(range(60), 3), 100: 1}
    assert aq.log_windows(str(uuid.uuid4()), rules, now_ns) == []
