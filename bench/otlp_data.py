"""Realistic OTLP requests for benchmarks: repeated attributes, uuids, numbers, log bodies, metric kinds."""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

SERVICES = ["checkout", "cart", "payment", "inventory", "shipping", "frontend", "auth", "search"]
ROUTES = ["/api/cart", "/api/checkout", "/api/pay", "/api/items/{id}", "/api/search", "/login", "/health"]
DB_STATEMENTS = [
    "SELECT * FROM orders WHERE id = ?",
    "UPDATE cart SET qty = ? WHERE id = ?",
    "INSERT INTO payments VALUES (?, ?, ?)",
]
LOG_TEMPLATES = [
    "user {u} added item {i} to cart {c}",
    "payment {p} authorised for order {o} amount={a:.2f} EUR",
    "GET /api/items/{i} 200 {ms}ms",
    "retrying call to inventory-service attempt={n} error=connection reset by peer",
    "order {o} shipped via carrier DHL tracking={t}",
    "cache miss for key product:{i}, loading from database",
]


def _resource(msg: Any, service: str, pod: int) -> None:
    for key, value in (
        ("service.name", service),
        ("service.version", "1.4.2"),
        ("deployment.environment", "production"),
        ("host.name", f"node-{pod % 7}"),
        ("k8s.pod.name", f"{service}-7d9f8b-{pod:05d}"),
        ("telemetry.sdk.language", "python"),
    ):
        msg.resource.attributes.add(key=key).value.string_value = value


def trace_request(spans: int, rng: random.Random, attributes: int = 12) -> bytes:
    """`spans` spans in traces of ~10 spans with up to 12 attributes each, like an instrumented web service.

    With 4 attributes a 1 000-span request is ~180 KB, the reference batch the design was measured with;
    with all 12 it is ~520 KB (long user agents, uuids, SQL statements).
    """
    req = ExportTraceServiceRequest()
    service = rng.choice(SERVICES)
    rs = req.resource_spans.add()
    _resource(rs, service, rng.randrange(100))
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "opentelemetry.instrumentation.django", "0.48b0"
    now = 1_760_000_000_000_000_000 + rng.randrange(10**12)
    trace_id, parent = os.urandom(16), b""
    for i in range(spans):
        if i % 10 == 0:
            trace_id, parent = os.urandom(16), b""
        span_id = os.urandom(8)
        start = now + i * 1_000_000 + rng.randrange(1000)
        duration = int(rng.lognormvariate(15, 1.2))
        span = ss.spans.add(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=rng.choice(ROUTES),
            kind=2 if not parent else 3,
            start_time_unix_nano=start,
            end_time_unix_nano=start + duration,
        )
        attrs = span.attributes
        _span_attributes(attrs, span.name, service, rng, attributes)
        if rng.random() < 0.05:
            span.status.code, span.status.message = 2, "upstream returned 500"
            event = span.events.add(time_unix_nano=start + duration // 2, name="exception")
            event.attributes.add(key="exception.type").value.string_value = "ConnectionError"
            event.attributes.add(key="exception.message").value.string_value = "connection reset by peer"
        parent = span_id
    return req.SerializeToString()


def _span_attributes(attrs: Any, route: str, service: str, rng: random.Random, count: int) -> None:
    values: list[tuple[str, Any]] = [
        ("http.request.method", rng.choice(["GET", "GET", "POST", "PUT"])),
        ("http.route", route),
        ("http.response.status_code", rng.choice([200] * 20 + [404, 500])),
        ("url.path", route.replace("{id}", str(rng.randrange(10**6)))),
        ("server.address", f"{service}.svc.cluster.local"),
        ("server.port", 8080),
        ("network.protocol.version", "1.1"),
        ("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"),
        ("enduser.id", str(uuid.UUID(int=rng.getrandbits(128)))),
        ("db.system", "postgresql"),
        ("db.statement", rng.choice(DB_STATEMENTS)),
        ("thread.id", rng.randrange(1, 64)),
    ]
    for key, value in values[:count]:
        if isinstance(value, int):
            attrs.add(key=key).value.int_value = value
        else:
            attrs.add(key=key).value.string_value = value


def log_request(records: int, rng: random.Random) -> bytes:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    _resource(rl, rng.choice(SERVICES), rng.randrange(100))
    sl = rl.scope_logs.add()
    sl.scope.name = "app.logger"
    now = 1_760_000_000_000_000_000 + rng.randrange(10**12)
    for i in range(records):
        severity = rng.choice([9] * 12 + [13, 13, 17])
        body = rng.choice(LOG_TEMPLATES).format(
            u=rng.randrange(10**5),
            i=rng.randrange(10**6),
            c=uuid.UUID(int=rng.getrandbits(128)),
            p=uuid.UUID(int=rng.getrandbits(128)),
            o=rng.randrange(10**7),
            a=rng.random() * 500,
            ms=rng.randrange(1, 900),
            n=rng.randrange(1, 5),
            t=os.urandom(6).hex(),
        )
        rec = sl.log_records.add(
            time_unix_nano=now + i * 100_000,
            observed_time_unix_nano=now + i * 100_000 + 5,
            severity_number=severity,
            severity_text={9: "INFO", 13: "WARN", 17: "ERROR"}[severity],
            trace_id=os.urandom(16),
            span_id=os.urandom(8),
            flags=1,
        )
        rec.body.string_value = body
        rec.attributes.add(key="logger.name").value.string_value = "app.orders"
        rec.attributes.add(key="code.lineno").value.int_value = rng.randrange(10, 900)
        rec.attributes.add(key="thread.name").value.string_value = f"worker-{rng.randrange(8)}"
    return req.SerializeToString()


def metric_request(points: int, rng: random.Random) -> bytes:
    """`points` data points spread over gauges, sums and histograms with a few label sets each."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    _resource(rm, rng.choice(SERVICES), rng.randrange(100))
    sm = rm.scope_metrics.add()
    sm.scope.name = "app.metrics"
    now = 1_760_000_000_000_000_000 + rng.randrange(10**12)
    per_metric = 50
    for m in range(points // per_metric):
        kind = m % 3
        metric = sm.metrics.add(
            name=["process.cpu.utilization", "http.server.requests", "http.server.duration"][kind] + f".{m}",
            unit=["1", "{request}", "ms"][kind],
        )
        for p in range(per_metric):
            labels = (("http.route", ROUTES[p % len(ROUTES)]), ("instance", f"pod-{p % 10}"))
            if kind == 0:
                dp = metric.gauge.data_points.add(time_unix_nano=now + p, as_double=rng.random())
            elif kind == 1:
                metric.sum.aggregation_temporality, metric.sum.is_monotonic = 2, True
                dp = metric.sum.data_points.add(
                    start_time_unix_nano=now - 10**10, time_unix_nano=now + p, as_int=rng.randrange(10**6)
                )
            else:
                metric.histogram.aggregation_temporality = 2
                dp = metric.histogram.data_points.add(
                    start_time_unix_nano=now - 10**10,
                    time_unix_nano=now + p,
                    count=100,
                    sum=rng.random() * 10**4,
                    explicit_bounds=[5, 10, 25, 50, 100, 250, 500, 1000],
                    bucket_counts=[rng.randrange(20) for _ in range(9)],
                )
            for key, value in labels:
                dp.attributes.add(key=key).value.string_value = value
    return req.SerializeToString()
