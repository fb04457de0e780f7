"""Trace search on the embedded engine: every condition, summaries with exact figures, and the SQL shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from ollystack.clickhouse import Backend, Signal, get_backend, set_backend
from ollystack.clickhouse.backends import Params, QueryResult, Settings
from ollystack.clickhouse.queries import newest_first_windows
from ollystack.telemetry.trace_search import TraceQuery, TraceSummary, search_traces

NS = 1_000_000_000
MS = 1_000_000
BASE = 1_700_000_000 * NS
T_CHECKOUT = "0123456789abcdef0123456789abcd01"
T_CART = "0123456789abcdef0123456789abcd02"
T_ORPHAN = "0123456789abcdef0123456789abcd03"


def _span(scope: Any, trace: str, span: str, parent: str, name: str, start_ms: int, end_ms: int) -> Any:
    return scope.spans.add(
        trace_id=bytes.fromhex(trace),
        span_id=bytes.fromhex(span),
        parent_span_id=bytes.fromhex(parent),
        name=name,
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=BASE + start_ms * MS,
        end_time_unix_nano=BASE + end_ms * MS,
    )


def shop_request() -> ExportTraceServiceRequest:
    """Three traces: checkout (frontend → checkout, ok, 120 ms), cart (frontend → payment, failing, 30 ms,
    a minute later), and an orphan checkout span whose root was not stored (two minutes later)."""
    req = ExportTraceServiceRequest()
    scopes = {}
    for service, env in (("frontend", "prod"), ("checkout", "prod"), ("payment", "staging")):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        rs.resource.attributes.add(key="deployment.environment").value.string_value = env
        scopes[service] = rs.scope_spans.add()
    root = _span(scopes["frontend"], T_CHECKOUT, "a1" * 8, "", "GET /checkout", 0, 120)
    root.attributes.add(key="http.route").value.string_value = "/checkout"
    root.attributes.add(key="http.response.status_code").value.int_value = 200
    child = _span(scopes["checkout"], T_CHECKOUT, "a2" * 8, "a1" * 8, "POST /api/checkout", 10, 100)
    child.attributes.add(key="http.route").value.string_value = "/api/checkout"
    child.attributes.add(key="cart.empty").value.bool_value = False

    cart = _span(scopes["frontend"], T_CART, "b1" * 8, "", "GET /cart", 60_000, 60_030)
    cart.attributes.add(key="http.route").value.string_value = "/cart"
    charge = _span(scopes["payment"], T_CART, "b2" * 8, "b1" * 8, "charge", 60_005, 60_025)
    charge.status.code = Status.STATUS_CODE_ERROR
    charge.attributes.add(key="http.response.status_code").value.int_value = 500
    charge.attributes.add(key="payment.amount").value.double_value = 12.5

    _span(scopes["checkout"], T_ORPHAN, "c2" * 8, "c1" * 8, "POST /api/checkout", 120_000, 120_040)
    return req


@pytest.fixture
def shop(tenant_id: str, insert_requests: Callable[..., int]) -> str:
    assert insert_requests(Signal.TRACES, (tenant_id, shop_request())) == 5
    return tenant_id


def search(tenant: str, **conditions: Any) -> list[str]:
    query = TraceQuery(start_ns=BASE - 60 * NS, end_ns=BASE + 600 * NS, **conditions)
    return [s.trace_id for s in search_traces(tenant, query)]


def test_summaries_have_exact_figures(shop: str) -> None:
    summaries = search_traces(shop, TraceQuery(BASE - 60 * NS, BASE + 600 * NS))
    assert summaries == [
        TraceSummary(
            T_ORPHAN, "checkout", "POST /api/checkout", BASE + 120 * NS, 40 * MS, 1, 0, ("checkout",)
        ),
        TraceSummary(T_CART, "frontend", "GET /cart", BASE + 60 * NS, 30 * MS, 2, 1, ("frontend", "payment")),
        TraceSummary(T_CHECKOUT, "frontend", "GET /checkout", BASE, 120 * MS, 2, 0, ("checkout", "frontend")),
    ]


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"service": "payment"}, [T_CART]),
        ({"service": "checkout"}, [T_ORPHAN, T_CHECKOUT]),
        ({"service": "checkout", "operation": "POST /api/checkout"}, [T_ORPHAN, T_CHECKOUT]),
        ({"operation": "GET /cart"}, [T_CART]),
        ({"operation": "nope"}, []),
        ({"min_duration_ns": 100 * MS}, [T_CHECKOUT]),
        ({"min_duration_ns": 40 * MS, "max_duration_ns": 90 * MS}, [T_ORPHAN, T_CHECKOUT]),  # inclusive
        ({"min_duration_ns": 40 * MS, "max_duration_ns": 89 * MS}, [T_ORPHAN]),
        ({"max_duration_ns": 20 * MS}, [T_CART]),
        ({"status": "error"}, [T_CART]),
        ({"status": "ok", "service": "payment"}, []),
        ({"status": "ok"}, [T_ORPHAN, T_CART, T_CHECKOUT]),
        ({"attributes": (("http.route", "/checkout"),)}, [T_CHECKOUT]),
        ({"attributes": (("http.route", "/checkout"), ("service.name", "frontend"))}, [T_CHECKOUT]),
        ({"attributes": (("http.route", "/checkout"), ("service.name", "checkout"))}, []),
        ({"attributes": (("deployment.environment", "staging"),)}, [T_CART]),
        ({"attributes": (("http.response.status_code", "500"),)}, [T_CART]),
        ({"attributes": (("http.response.status_code", "200"),)}, [T_CHECKOUT]),
        ({"attributes": (("payment.amount", "12.5"),)}, [T_CART]),
        ({"attributes": (("cart.empty", "false"),)}, [T_CHECKOUT]),
        ({"attributes": (("http.route", ""),)}, []),
        ({"attributes": (("it's", "a \\ 'quote'"),)}, []),
        ({"limit": 1}, [T_ORPHAN]),
    ],
)
def test_conditions(shop: str, conditions: dict[str, Any], expected: list[str]) -> None:
    assert search(shop, **conditions) == expected


def test_time_range_selects_matching_spans_but_summaries_take_the_whole_trace(shop: str) -> None:
    # only the checkout child span lies in [BASE + 5 ms, BASE + 50 ms): the trace is summarized whole
    summaries = search_traces(shop, TraceQuery(BASE + 5 * MS, BASE + 50 * MS))
    assert [(s.trace_id, s.span_count, s.duration_ns) for s in summaries] == [(T_CHECKOUT, 2, 120 * MS)]
    assert search_traces(shop, TraceQuery(BASE - 600 * NS, BASE - 60 * NS)) == []


def test_other_tenants_see_nothing(shop: str) -> None:
    assert search("another-tenant", service="checkout") == []


def test_bad_queries_are_refused(shop: str) -> None:
    with pytest.raises(ValueError, match="status 'failed' is not one of error, ok"):
        search(shop, status="failed")
    with pytest.raises(ValueError, match="at most 10 attribute filters"):
        search(shop, attributes=tuple((f"k{n}", "v") for n in range(11)))


class Recording(Backend):
    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.sql: list[str] = []

    def query(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> QueryResult:
        self.sql.append(sql)
        return self.inner.query(sql, params, settings)


def test_windows_back_from_the_end_then_one_summary(shop: str) -> None:
    recording = Recording(get_backend())
    set_backend(recording)
    try:
        # windows [540 s, 600 s), [300 s, 540 s), [-660 s, 300 s) from BASE: the third holds all three
        # traces, so the fourth, [-3600 s, -660 s), is never read
        attributes = (("http.response.status_code", "500"),)
        query = TraceQuery(
            BASE - 3600 * NS, BASE + 600 * NS, service="payment", attributes=attributes, limit=1
        )
        assert [s.trace_id for s in search_traces(shop, query)] == [T_CART]
    finally:
        set_backend(recording.inner)
    *found, summary = recording.sql
    assert len(found) == 3
    for sql in found:
        assert sql.count("FROM spans") == 1
        assert sql.count("(tenant_id = {tenant_id:String})") == 1
        assert "has({attr_typed_0:Array(String)}, attributes_other[{attr_key_0:String}])" in sql
        assert "GROUP BY trace_id\nORDER BY 2 DESC, trace_hex\nLIMIT {limit:UInt64}" in sql
    assert summary.count("FROM spans") == 1
    assert summary.count("(tenant_id = {tenant_id:String})") == 1
    assert "trace_id IN (SELECT toFixedString(unhex(arrayJoin({trace_ids:Array(String)})), 16))" in summary


def test_a_trace_matching_in_several_windows_counts_once_at_its_last_match(shop: str) -> None:
    # the first window [BASE + 10 ms, BASE + 60.01 s) holds the cart root and the checkout child; the
    # checkout root (BASE) is in the next one
    end = BASE + 60_010 * MS
    assert [s.trace_id for s in search_traces(shop, TraceQuery(BASE - 60 * NS, end, limit=1))] == [T_CART]
    summaries = search_traces(shop, TraceQuery(BASE - 60 * NS, end))
    assert [(s.trace_id, s.span_count) for s in summaries] == [(T_CART, 2), (T_CHECKOUT, 2)]


def test_windows_grow_fourfold_from_the_end() -> None:
    m = 60 * NS
    assert newest_first_windows(0, 30 * m) == [
        (29 * m, 30 * m),
        (25 * m, 29 * m),
        (9 * m, 25 * m),
        (0, 9 * m),
    ]
    assert newest_first_windows(5, 5) == []
