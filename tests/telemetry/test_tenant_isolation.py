"""Tenant isolation of every read helper, enforced in one place: the query builder.

Every public function of an ``ollystack.telemetry`` module whose first parameter is ``tenant_id`` is found
by walking the package, so a new read helper is covered as soon as it exists — or the test fails until it
is registered in ``HELPERS`` with the arguments to call it with. Each helper is called

- as tenant A, which owns realistic data (traces with errors and cross-service calls, logs, metrics of
  every kind) inserted through the real segment insert: it must see some of it, or the test proves nothing;
- as tenant B, which owns similar data of its own (written in the same segments), with A's arguments (A's
  trace id, A's services, A's search token): nothing of A may come back;
- as a tenant without data: the result must be empty.

Every statement the helpers send is recorded: each one must read every table it names under the builder's
tenant condition, bound to the caller's tenant.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

import ollystack.telemetry
from ollystack.clickhouse import Backend, Signal, get_backend, set_backend
from ollystack.clickhouse.backends import Params, QueryResult, Settings
from ollystack.clickhouse.otlp import frame
from ollystack.clickhouse.queries import select

NS = 1_000_000_000
MINUTE = 60 * NS
TENANT_CONDITION = "tenant_id = {tenant_id:String}"


# --- the data: one tenant's telemetry, made distinguishable by a tag in every service name and token ----


@dataclass(frozen=True)
class Dataset:
    tenant_id: str
    tag: str
    now_ns: int
    trace_ids: tuple[str, ...]
    error_trace_id: str
    token: str
    # a trace of another tenant that calls into this one: (trace id, the calling span's id), both hex
    inbound: tuple[str, str] | None = None

    # the span of the first trace that calls a partner's API (which may be another tenant)
    outbound_span_id: bytes = b"\x0b" * 8

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(f"{name}-{self.tag}" for name in ("frontend", "checkout", "payment"))

    @property
    def start_ns(self) -> int:
        return self.now_ns - 2 * 60 * MINUTE

    @property
    def end_ns(self) -> int:
        return self.now_ns + 5 * MINUTE

    def markers(self) -> tuple[str, ...]:
        """Strings that only this tenant's data contains (the first trace id is shared with a partner)."""
        return (self.tag, self.token, *self.trace_ids[1:])


def _resource(container: Any, service: str) -> Any:
    item = container.add()
    for key, value in (
        ("service.name", service),
        ("service.version", "2.3.1"),
        ("deployment.environment", "production"),
        ("k8s.pod.name", f"{service}-5f7c9d-x2x7q"),
    ):
        item.resource.attributes.add(key=key).value.string_value = value
    return item


def _attrs(target: Any, **values: str | int) -> None:
    for key, value in values.items():
        kv = target.add(key=key.replace("_", "."))
        if isinstance(value, int):
            kv.value.int_value = value
        else:
            kv.value.string_value = value


def _trace_request(ds: Dataset) -> ExportTraceServiceRequest:
    """A frontend → checkout → payment → postgres call chain per trace, one failing payment; the first
    trace also calls a partner's API, and a partner's trace may call into checkout (``inbound``)."""
    frontend, checkout, payment = ds.services
    SERVER, CLIENT = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT
    req = ExportTraceServiceRequest()
    scopes = {}
    for service in ds.services:
        rs = _resource(req.resource_spans, service)
        scope = rs.scope_spans.add()
        scope.scope.name, scope.scope.version = "opentelemetry.instrumentation.flask", "0.48b0"
        scopes[service] = scope.spans
    for n, trace_hex in enumerate(ds.trace_ids):
        trace = bytes.fromhex(trace_hex)
        failed = trace_hex == ds.error_trace_id
        t0 = ds.now_ns - (50 - 2 * n) * MINUTE
        ids = [uuid.uuid4().bytes[:8] for _ in range(6)]
        chain = [
            (frontend, "GET /checkout", SERVER, b"", 0, 120, {"http_route": "/checkout"}),
            (frontend, "POST", CLIENT, ids[0], 5, 100, {"peer_service": checkout}),
            (checkout, "POST /api/checkout", SERVER, ids[1], 7, 95, {"http_route": "/api/checkout"}),
            (checkout, "POST", CLIENT, ids[2], 10, 80, {"peer_service": payment}),
            (payment, "POST /api/pay", SERVER, ids[3], 12, 75, {"http_route": "/api/pay"}),
            (payment, "INSERT payments", CLIENT, ids[4], 20, 30, {"db_system": "postgresql"}),
        ]
        for i, (service, name, kind, parent, start_ms, end_ms, attributes) in enumerate(chain):
            span = scopes[service].add(
                trace_id=trace,
                span_id=ids[i],
                parent_span_id=parent,
                name=name,
                kind=kind,
                start_time_unix_nano=t0 + start_ms * 1_000_000,
                end_time_unix_nano=t0 + end_ms * 1_000_000 + n * 1000,
            )
            _attrs(span.attributes, **attributes, http_response_status_code=500 if failed else 200)
            if failed and service != frontend:
                span.status.code = Status.STATUS_CODE_ERROR
                span.status.message = f"card declined {ds.token}"
                event = span.events.add(time_unix_nano=t0 + 25 * 1_000_000, name="exception")
                _attrs(event.attributes, exception_type="PaymentDeclined", exception_message="card declined")
        if n == 0:
            span = scopes[frontend].add(
                trace_id=trace,
                span_id=ds.outbound_span_id,
                parent_span_id=ids[0],
                name="POST /partner/orders",
                kind=CLIENT,
                start_time_unix_nano=t0 + 101 * 1_000_000,
                end_time_unix_nano=t0 + 110 * 1_000_000,
            )
            _attrs(span.attributes, peer_service="partner-api", server_address="api.partner.example")
    if ds.inbound:
        t0 = ds.now_ns - 50 * MINUTE
        span = scopes[checkout].add(
            trace_id=bytes.fromhex(ds.inbound[0]),
            span_id=uuid.uuid4().bytes[:8],
            parent_span_id=bytes.fromhex(ds.inbound[1]),
            name="POST /partner/orders",
            kind=SERVER,
            start_time_unix_nano=t0 + 102 * 1_000_000,
            end_time_unix_nano=t0 + 108 * 1_000_000,
        )
        _attrs(span.attributes, http_route="/partner/orders")
    return req


def _log_request(ds: Dataset) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    for service in ds.services:
        rl = _resource(req.resource_logs, service)
        scope = rl.scope_logs.add()
        scope.scope.name = "app.logger"
        for n, trace_hex in enumerate(ds.trace_ids):
            t = ds.now_ns - (50 - 2 * n) * MINUTE
            failed = trace_hex == ds.error_trace_id and service != ds.services[0]
            for i, (severity, text, body) in enumerate(
                [
                    (9, "INFO", f"handled request order={1000 + n} in {40 + n} ms"),
                    (13, "WARN", f"retrying call attempt={n % 3} error=connection reset by peer"),
                    (17, "ERROR", f"payment failed for order={1000 + n}: card declined {ds.token}")
                    if failed
                    else (9, "INFO", f"cache miss for key product:{n}, loading from database"),
                ]
            ):
                record = scope.log_records.add(
                    time_unix_nano=t + i * 1_000_000,
                    observed_time_unix_nano=t + i * 1_000_000 + 5000,
                    severity_number=severity,
                    severity_text=text,
                    trace_id=bytes.fromhex(trace_hex),
                    span_id=uuid.uuid4().bytes[:8],
                )
                record.body.string_value = body
                _attrs(record.attributes, logger_name="app.orders", code_lineno=100 + i)
    return req


def _metric_request(ds: Dataset, minutes: range) -> ExportMetricsServiceRequest:
    """All five metric kinds per service, one point a minute of the last hour; the payment service's
    queue and latency jump in the last two minutes (what anomaly detection should find)."""
    req = ExportMetricsServiceRequest()
    for service in ds.services:
        rm = _resource(req.resource_metrics, service)
        scope = rm.scope_metrics.add()
        scope.scope.name = "app.metrics"
        gauge = scope.metrics.add(name="queue.depth", unit="{item}", description="items waiting")
        counter = scope.metrics.add(name="http.server.requests", unit="{request}")
        counter.sum.aggregation_temporality, counter.sum.is_monotonic = 2, True
        latency = scope.metrics.add(name="http.server.duration", unit="ms")
        latency.histogram.aggregation_temporality = 2
        exp = scope.metrics.add(name="http.server.duration.exp", unit="ms")
        exp.exponential_histogram.aggregation_temporality = 2
        summary = scope.metrics.add(name="gc.pause", unit="s")
        start = ds.now_ns - 61 * MINUTE
        for m in minutes:
            t = ds.now_ns - (59 - m) * MINUTE
            spike = service.startswith("payment") and m >= 58
            value = 900.0 if spike else 10.0 + (m % 5) * 0.5
            for route in ("/checkout", "/api/pay"):
                point = gauge.gauge.data_points.add(time_unix_nano=t, as_double=value)
                _attrs(point.attributes, http_route=route)
                point = counter.sum.data_points.add(
                    start_time_unix_nano=start, time_unix_nano=t, as_int=100 * m + len(route)
                )
                _attrs(point.attributes, http_route=route)
            hist = latency.histogram.data_points.add(
                start_time_unix_nano=start,
                time_unix_nano=t,
                count=10,
                sum=value * 10,
                min=value / 2,
                max=value * 2,
                explicit_bounds=[5, 10, 25, 50, 100, 250, 500, 1000],
                bucket_counts=[0, 2, 5, 3, 0, 0, 0, 0, 0] if not spike else [0, 0, 0, 0, 0, 0, 0, 10, 0],
            )
            _attrs(hist.attributes, http_route="/api/pay")
            hist.exemplars.add(time_unix_nano=t, as_double=value, trace_id=bytes.fromhex(ds.trace_ids[0]))
            point = exp.exponential_histogram.data_points.add(
                start_time_unix_nano=start, time_unix_nano=t, count=4, sum=value * 4, scale=2, zero_count=1
            )
            point.positive.offset = 3
            point.positive.bucket_counts.extend([1, 2])
            point = summary.summary.data_points.add(time_unix_nano=t, count=3, sum=0.03)
            point.quantile_values.add(quantile=0.5, value=0.01)
            point.quantile_values.add(quantile=0.99, value=0.02)
    return req


def _dataset(tenant_id: str, now_ns: int, inbound: tuple[str, str] | None = None) -> Dataset:
    trace_ids = tuple(uuid.uuid4().hex for _ in range(24))
    return Dataset(
        inbound=inbound,
        outbound_span_id=uuid.uuid4().bytes[:8],
        tenant_id=tenant_id,
        tag=uuid.uuid4().hex[:8],
        now_ns=now_ns,
        trace_ids=trace_ids,
        error_trace_id=trace_ids[-3],
        token=f"zx{uuid.uuid4().hex[:10]}q",
    )


@dataclass(frozen=True)
class Tenants:
    a: Dataset
    b: Dataset
    empty: str


@pytest.fixture(scope="module")
def tenants(clickhouse: Backend, tmp_path_factory: pytest.TempPathFactory) -> Tenants:
    """Tenants A and B with data written in the same segments (as the ingest path batches them), and a
    tenant without data. A's first trace calls B's checkout (trace context crosses tenants, as when one
    customer calls another's API): B stores a span of A's trace."""
    now = time.time_ns()
    a = _dataset(str(uuid.uuid4()), now)
    b = _dataset(str(uuid.uuid4()), now, inbound=(a.trace_ids[0], a.outbound_span_id.hex()))
    directory = tmp_path_factory.mktemp("segments")
    # metrics arrive minute by minute: anomalies are scored against what earlier inserts stored
    steps: list[tuple[Signal, Callable[[Dataset], Any]]] = [
        (Signal.TRACES, _trace_request),
        (Signal.LOGS, _log_request),
        (Signal.METRICS, lambda ds: _metric_request(ds, range(58))),
        (Signal.METRICS, lambda ds: _metric_request(ds, range(58, 60))),
    ]
    for n, (signal, build) in enumerate(steps):
        path = directory / f"{n}-{signal.value}.seg"
        path.write_bytes(b"".join(frame(ds.tenant_id, build(ds).SerializeToString()) for ds in (a, b)))
        assert clickhouse.insert_otlp_segment(signal, path, uuid.uuid4().hex) > 0
    return Tenants(a, b, str(uuid.uuid4()))


# --- the registry: how to call each read helper --------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """How to call one helper on tenant A's data: ``args`` builds the arguments after ``tenant_id``;
    ``is_empty`` says whether a result holds no data (default: :func:`is_empty`)."""

    args: Callable[[Dataset], tuple[Any, ...]]
    is_empty: Callable[[Any], bool] | None = None
    # False for results of counts only (no names or ids to recognise): the args then select data only
    # tenant A has, and tenant B must get an empty result
    marked: bool = True


def _log_query(**kwargs: Any) -> Callable[[Dataset], tuple[Any, ...]]:
    def build(ds: Dataset) -> tuple[Any, ...]:
        from ollystack.telemetry.logs import LogQuery

        return (LogQuery(ds.start_ns, ds.end_ns, **{k: v(ds) for k, v in kwargs.items()}),)

    return build


def _metric_query(**kwargs: Any) -> Callable[[Dataset], tuple[Any, ...]]:
    def build(ds: Dataset) -> tuple[Any, ...]:
        from ollystack.telemetry.metrics import MetricQuery

        return (MetricQuery(ds.start_ns, ds.end_ns, **{k: v(ds) for k, v in kwargs.items()}),)

    return build


def _trace_query(**kwargs: Any) -> Callable[[Dataset], tuple[Any, ...]]:
    def build(ds: Dataset) -> tuple[Any, ...]:
        from ollystack.telemetry.trace_search import TraceQuery

        return (TraceQuery(ds.start_ns, ds.end_ns, **{k: v(ds) for k, v in kwargs.items()}),)

    return build


def _asked(ds: Dataset) -> Any:
    from ollystack.telemetry.api.params import Window

    return Window(ds.start_ns, ds.end_ns, ds.start_ns, ds.end_ns)


def _tail_filter() -> Any:
    from ollystack.telemetry.log_tail import TailFilter

    return TailFilter()


def _tail_cursor() -> Any:
    from ollystack.telemetry.log_tail import TailCursor

    return TailCursor(0)


def _window(ds: Dataset) -> tuple[Any, ...]:
    return (ds.start_ns, ds.end_ns)


def _red_rules(ds: Dataset) -> list[Any]:
    from ollystack.telemetry.alert_queries import RedRule

    return [
        RedRule(1, ds.services[2], window_seconds=3 * 3600),
        RedRule(2, ds.services[1], "POST /api/checkout", "latency", 0.9, window_seconds=60),
    ]


def _log_rules(ds: Dataset) -> list[Any]:
    from ollystack.telemetry.alert_queries import LogRule

    return [LogRule(1, ds.token, window_seconds=3 * 3600), LogRule(2, "", 17, window_seconds=3 * 3600)]


# One entry per read helper ("module.function"); several calls per helper exercise its filters.
HELPERS: dict[str, list[Call]] = {
    "traces.get_trace": [
        Call(lambda ds: (ds.trace_ids[0],)),
        Call(lambda ds: (ds.error_trace_id.upper(),)),
    ],
    "logs.search_logs": [
        Call(_log_query()),
        Call(_log_query(text=lambda ds: ds.token)),
        Call(_log_query(trace_id=lambda ds: ds.error_trace_id, severity_min=lambda ds: 17)),
        Call(_log_query(service=lambda ds: ds.services[2], limit=lambda ds: 5)),
    ],
    "metrics.list_metric_points": [
        Call(_metric_query()),
        Call(_metric_query(name=lambda ds: "http.server.duration", service=lambda ds: ds.services[2])),
    ],
    "metrics.list_metric_names": [Call(_window)],
    "services.list_services": [Call(_window)],
    "services.service_red": [Call(_window)],
    "services.operation_red": [Call(lambda ds: (ds.services[2], *_window(ds)))],
    "errors.list_errors": [
        Call(_window),
        Call(lambda ds: (*_window(ds), ds.services[2])),
    ],
    "topology.service_topology": [Call(_window)],
    "anomalies.current_anomalies": [Call(_window)],
    "log_volume.log_volume": [
        Call(_window),
        Call(lambda ds: (*_window(ds), ds.services[1])),
    ],
    "services.service_overview": [Call(_window)],
    # the cached reads behind the REST API and GraphQL
    "api.reads.service_list": [Call(lambda ds: (_asked(ds),))],
    "api.reads.service_names": [Call(lambda ds: (_asked(ds),))],
    "api.reads.operation_list": [Call(lambda ds: (ds.services[2], _asked(ds)))],
    "api.reads.trace_summaries": [Call(lambda ds: (*_trace_query()(ds), _asked(ds)))],
    "api.reads.trace_spans": [Call(lambda ds: (ds.trace_ids[1],))],
    "api.reads.log_page": [Call(lambda ds: (*_log_query(text=lambda ds: ds.token)(ds), _asked(ds)))],
    "api.reads.metric_points": [Call(lambda ds: (*_metric_query()(ds), _asked(ds)))],
    "api.reads.metric_names": [Call(lambda ds: (_asked(ds),))],
    "api.reads.metric_labels": [Call(lambda ds: (_asked(ds), "queue.depth", "service.name"))],
    "api.reads.error_groups": [Call(lambda ds: (_asked(ds),))],
    "api.reads.topology_edges": [Call(lambda ds: (_asked(ds),))],
    "metrics.metric_labels": [
        Call(_window),
        Call(lambda ds: (*_window(ds), "queue.depth", "service.name")),
    ],
    "trace_search.search_traces": [
        Call(_trace_query()),
        Call(_trace_query(service=lambda ds: ds.services[2], status=lambda ds: "error")),
        Call(
            _trace_query(
                attributes=lambda ds: (("http.route", "/api/pay"), ("http.response.status.code", "500"))
            )
        ),
    ],
    # alert rules: windows of 3 hours ending now; results carry the service (RED) or a matching body (logs)
    "alert_queries.red_windows": [Call(lambda ds: (_red_rules(ds), ds.now_ns))],
    "alert_queries.red_history": [Call(lambda ds: (_red_rules(ds), ds.now_ns))],
    "alert_queries.log_windows": [Call(lambda ds: (_log_rules(ds), ds.now_ns))],
    # PromQL (Prometheus HTTP API): times in milliseconds; results carry job = service.name
    "promql.query.catalog": [Call(lambda ds: (ds.start_ns // 1_000_000, ds.end_ns // 1_000_000))],
    "promql.query.instant_query": [
        Call(lambda ds: ("sum by (job) (queue_depth)", ds.now_ns // 1_000_000), lambda r: not r["result"]),
        Call(
            lambda ds: ('{__name__=~"http_.*", job!=""}', ds.now_ns // 1_000_000), lambda r: not r["result"]
        ),
    ],
    "promql.query.range_query": [
        Call(
            lambda ds: (
                "sum by (job, le) (rate(http_server_duration_milliseconds_bucket[5m]))",
                ds.start_ns // 1_000_000,
                ds.now_ns // 1_000_000,
                60_000,
            ),
            lambda r: not r["result"],
        ),
    ],
    # the UI's reads: RED series, slowest requests, the log histogram and tail, a trace's waterfall and span
    "red_series.service_series": [Call(_window, lambda r: not r.series)],
    "red_series.operation_series": [
        Call(lambda ds: (ds.services[2], *_window(ds)), lambda r: not r.series, marked=False)
    ],
    "red_series.slowest_requests": [Call(lambda ds: (ds.services[0], *_window(ds)))],
    "log_histogram.log_histogram": [
        Call(
            _log_query(text=lambda ds: ds.token), lambda r: not any(map(any, r.counts.values())), marked=False
        )
    ],
    "log_tail.poll": [Call(lambda ds: (_tail_filter(), _tail_cursor(), ds.now_ns - 45 * MINUTE))],
    "trace_waterfall.waterfall": [Call(lambda ds: (ds.trace_ids[1],), lambda r: not r.spans)],
    "trace_waterfall.get_span": [Call(lambda ds: (ds.trace_ids[0], ds.outbound_span_id.hex()))],
    "promql.query.find_series": [
        Call(lambda ds: (["queue_depth"], ds.start_ns // 1_000_000, ds.end_ns // 1_000_000)),
        Call(lambda ds: ([], None, None)),
    ],
}


def is_empty(value: Any) -> bool:
    """No data: None, zero, empty text or collection; a dict or dataclass whose values are all empty."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return not value
    if is_dataclass(value) and not isinstance(value, type):
        return all(is_empty(getattr(value, f.name)) for f in fields(value))
    if isinstance(value, Mapping):
        return all(is_empty(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return len(value) == 0
    raise TypeError(f"cannot tell whether a {type(value).__name__} is empty: give its Call an is_empty")


def discover_helpers() -> dict[str, Callable[..., Any]]:
    """Public functions of ``ollystack.telemetry.*`` modules whose first parameter is ``tenant_id``."""
    found: dict[str, Callable[..., Any]] = {}
    prefix = ollystack.telemetry.__name__ + "."
    for info in pkgutil.walk_packages(ollystack.telemetry.__path__, prefix):
        module = importlib.import_module(info.name)
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or fn.__module__ != module.__name__:
                continue
            params = list(inspect.signature(fn).parameters)
            if params and params[0] == "tenant_id":
                found[f"{info.name.removeprefix(prefix)}.{name}"] = fn
    return found


# Functions of ollystack.telemetry that take tenant_id first but send no statement of their own to
# ClickHouse: dashboards are rows of the Django database (their tenant scoping is tested in
# tests/telemetry/test_dashboards.py; panel data runs through the PromQL and user SQL paths registered or
# engine-restricted elsewhere), and the live tail's subscription runs log_tail.poll.
NOT_ENGINE_READS = {
    "dashboards.create_dashboard",
    "dashboards.dashboard_panels",
    "dashboards.delete_dashboard",
    "dashboards.get_dashboard",
    "dashboards.group_name",
    "dashboards.list_dashboards",
    "dashboards.panel_data",
    "dashboards.publish",
    "dashboards.update_dashboard",
    "live.tail.subscribe",
}
DISCOVERED = {name: fn for name, fn in discover_helpers().items() if name not in NOT_ENGINE_READS}


def test_every_read_helper_is_registered() -> None:
    missing = sorted(set(DISCOVERED) - set(HELPERS))
    assert not missing, (
        f"read helpers without an entry in HELPERS of {__file__}: {', '.join(missing)}. Register each one "
        "with the arguments that make it return tenant A's data (see Call), so that its tenant isolation "
        "is tested."
    )
    stale = sorted(set(HELPERS) - set(DISCOVERED))
    assert not stale, f"HELPERS names functions that are gone or no longer take tenant_id first: {stale}"


# --- recording every statement --------------------------------------------------------------------------


class RecordingBackend(Backend):
    """The real backend, recording each statement sent (SQL and parameters)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.statements: list[tuple[str, dict[str, Any]]] = []

    def query(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> QueryResult:
        self.statements.append((sql, dict(params or {})))
        return self.inner.query(sql, params, settings)

    def command(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> None:
        self.statements.append((sql, dict(params or {})))
        self.inner.command(sql, params, settings)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def recorder(clickhouse: Backend) -> Iterator[RecordingBackend]:
    recording = RecordingBackend(get_backend())
    set_backend(recording)
    try:
        yield recording
    finally:
        set_backend(recording.inner)


@pytest.fixture(scope="module")
def tables(clickhouse: Backend) -> set[str]:
    """Every table, view and dictionary of the database (what a statement may read)."""
    rows = clickhouse.query("SELECT name FROM system.tables WHERE database = currentDatabase()").rows
    return {row[0] for row in rows}


_TABLE_REF = re.compile(r"\b(?:FROM|JOIN)\s+`?(\w+)`?(?!\s*\()", re.IGNORECASE)


def assert_tenant_filtered(
    statements: list[tuple[str, dict[str, Any]]], tenant: str, tables: set[str]
) -> None:
    assert statements, "the helper sent no statement to ClickHouse"
    for sql, params in statements:
        read = [t for t in _TABLE_REF.findall(sql) if t in tables]
        assert read, f"no table read by:\n{sql}"
        assert sql.count(TENANT_CONDITION) >= len(read), (
            f"a table is read without the query builder's tenant condition ({len(read)} tables, "
            f"{sql.count(TENANT_CONDITION)} conditions):\n{sql}"
        )
        assert params.get("tenant_id") == tenant, f"tenant_id bound to {params.get('tenant_id')!r}:\n{sql}"


# --- the matrix -----------------------------------------------------------------------------------------


def _calls() -> list[Any]:
    return [
        pytest.param(name, i, id=f"{name}[{i}]")
        for name in sorted(DISCOVERED)
        for i in range(len(HELPERS.get(name, [])))
    ]


def _found(result: Any, markers: tuple[str, ...]) -> list[str]:
    text = repr(result).lower()
    return [m for m in markers if m.lower() in text]


@pytest.mark.parametrize(("name", "index"), _calls())
def test_helper_sees_only_its_tenants_data(
    name: str, index: int, tenants: Tenants, recorder: RecordingBackend, tables: set[str]
) -> None:
    helper, call = DISCOVERED[name], HELPERS[name][index]
    empty = call.is_empty or is_empty
    args = call.args(tenants.a)

    recorder.statements.clear()
    own = helper(tenants.a.tenant_id, *args)
    assert not empty(own), f"{name}{args} returned nothing for the tenant that owns the data: {own!r}"
    if call.marked:
        assert _found(own, tenants.a.markers()), f"{name}: none of tenant A's data in {own!r}"
        assert not _found(own, tenants.b.markers()), f"{name}: tenant B's data in tenant A's result {own!r}"
    assert_tenant_filtered(recorder.statements, tenants.a.tenant_id, tables)

    recorder.statements.clear()
    other = helper(tenants.b.tenant_id, *args)
    leaked = _found(other, tenants.a.markers())
    assert not leaked, f"{name}: tenant B sees tenant A's data ({leaked}) in {other!r}"
    if not call.marked:
        assert empty(other), f"{name}: tenant B counts tenant A's data in {other!r}"
    assert_tenant_filtered(recorder.statements, tenants.b.tenant_id, tables)

    recorder.statements.clear()
    nobody = helper(tenants.empty, *args)
    assert empty(nobody), f"{name}: a tenant without data gets {nobody!r}"
    assert_tenant_filtered(recorder.statements, tenants.empty, tables)


# --- the builder is the one place ------------------------------------------------------------------------


def test_the_builder_refuses_a_select_without_tenant() -> None:
    with pytest.raises(ValueError, match="tenant id is required"):
        select("spans", "", ["count()"])


def test_main_helpers_sql_starts_with_the_tenant_condition(
    tenants: Tenants, recorder: RecordingBackend
) -> None:
    """The tenant condition is the first WHERE condition of the builder's SQL for the main read paths."""
    a = tenants.a
    for name, args in (
        ("traces.get_trace", (a.trace_ids[0],)),
        ("logs.search_logs", _log_query(text=lambda ds: ds.token)(a)),
        ("services.service_red", _window(a)),
        ("topology.service_topology", _window(a)),
        ("metrics.list_metric_points", _metric_query()(a)),
    ):
        recorder.statements.clear()
        DISCOVERED[name](a.tenant_id, *args)
        for sql, params in recorder.statements:
            assert re.search(r"\bWHERE \(tenant_id = \{tenant_id:String\}\)", sql), f"{name}:\n{sql}"
            assert params["tenant_id"] == a.tenant_id


def test_helpers_reject_calls_without_tenant(tenants: Tenants) -> None:
    for name, call in sorted((n, c[0]) for n, c in HELPERS.items() if n in DISCOVERED):
        with pytest.raises(ValueError, match="tenant"):
            DISCOVERED[name]("", *call.args(tenants.a))


def test_a_trace_crossing_tenants_is_split_by_tenant(tenants: Tenants) -> None:
    """A's first trace calls into B: each tenant sees its own spans of it, and neither the other's
    services in its service map."""
    from ollystack.telemetry import topology, traces

    a, b = tenants.a, tenants.b
    shared = a.trace_ids[0]
    assert {s["serviceName"] for s in traces.get_trace(a.tenant_id, shared)} == set(a.services)
    assert [s["serviceName"] for s in traces.get_trace(b.tenant_id, shared)] == [b.services[1]]
    for own, other in ((a, b), (b, a)):
        edges = repr(topology.service_topology(own.tenant_id, *_window(own)))
        assert own.tag in edges
        assert other.tag not in edges, f"{other.services} in the service map of another tenant: {edges}"


# --- not read helpers -------------------------------------------------------------------------------------

# The query cache takes tenant_id first but runs no query of its own: it returns what the caller's read
# function computes, under a key that includes the tenant. tests/telemetry/test_cache.py proves that tenant B
# never gets tenant A's cached result.
DISCOVERED.pop("cache.cached_read", None)
