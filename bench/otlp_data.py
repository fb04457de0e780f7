"""Realistic OTLP requests for benchmarks: repeated attributes, uuids, numbers, log bodies, metric kinds."""

from __future__ import annotations

import hashlib
import os
import random
import time
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


# --- realistic telemetry for the storage benchmark (bench.storage) ----------------------------------------
# A small shop on Kubernetes: services with a few pods each, resource attributes as the OpenTelemetry SDKs
# and the k8s attributes processor set them, requests that fan out over HTTP, SQL, Redis and Kafka, log lines
# written while serving them (with the trace context), access logs and JSON logs without it, and the
# metrics each pod exports every 15 s. Timestamps end at ``end_ns`` (now, so retention keeps them).

_SHOP = {
    # service: (language, sdk version, downstream calls, database)
    "frontend": ("nodejs", "1.26.0", ["cart", "checkout", "search", "recommendation", "auth"], ""),
    "cart": ("go", "1.31.0", ["inventory"], "redis"),
    "checkout": ("java", "1.42.1", ["cart", "payment", "shipping", "email"], "postgresql"),
    "payment": ("python", "1.27.0", [], "postgresql"),
    "inventory": ("java", "1.42.1", [], "postgresql"),
    "shipping": ("go", "1.31.0", [], "postgresql"),
    "search": ("python", "1.27.0", ["inventory"], "elasticsearch"),
    "recommendation": ("python", "1.27.0", ["inventory"], "redis"),
    "auth": ("go", "1.31.0", [], "postgresql"),
    "email": ("python", "1.27.0", [], ""),
}
_ROUTES = {
    "frontend": ["/", "/product/{id}", "/cart", "/checkout", "/search", "/login", "/api/recommendations"],
    "cart": ["/api/cart/{id}", "/api/cart/{id}/items"],
    "checkout": ["/api/checkout", "/api/orders/{id}"],
    "payment": ["/api/payments", "/api/payments/{id}/capture"],
    "inventory": ["/api/items/{id}", "/api/items", "/api/stock/{id}"],
    "shipping": ["/api/quotes", "/api/shipments"],
    "search": ["/api/search"],
    "recommendation": ["/api/recommendations/{id}"],
    "auth": ["/api/sessions", "/api/tokens/verify"],
    "email": ["/api/send"],
}
_TABLES = ["orders", "order_items", "payments", "items", "stock", "shipments", "users", "sessions"]
_SQL = [
    "SELECT id, status, total, currency, created_at FROM {t} WHERE id = $1",
    "SELECT * FROM {t} WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20",
    "UPDATE {t} SET status = $1, updated_at = now() WHERE id = $2",
    "INSERT INTO {t} (id, user_id, amount, currency, created_at) VALUES ($1, $2, $3, $4, now())",
]
_USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 "
    "Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "okhttp/4.12.0",
]
_INSTRUMENTATION = {
    "nodejs": ("@opentelemetry/instrumentation-http", "0.54.0"),
    "go": ("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "0.56.0"),
    "java": ("io.opentelemetry.spring-webmvc-6.0", "2.9.0-alpha"),
    "python": ("opentelemetry.instrumentation.flask", "0.48b0"),
}
_DB_SCOPE = {
    "postgresql": "opentelemetry.instrumentation.psycopg",
    "redis": "opentelemetry.instrumentation.redis",
    "elasticsearch": "opentelemetry.instrumentation.elasticsearch",
}
_STACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/{svc}/handlers.py", line {l1}, in handle\n    result = self.process(request)\n'
    '  File "/app/{svc}/service.py", line {l2}, in process\n    return self.client.call(payload)\n'
    '  File "/usr/local/lib/python3.12/site-packages/urllib3/connectionpool.py", line 789, in urlopen\n'
    "    response = self._make_request(\n"
    "urllib3.exceptions.ProtocolError: ('Connection aborted.', ConnectionResetError(104, "
    "'Connection reset by peer'))"
)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _add_attrs(target: Any, items: list[tuple[str, Any]]) -> None:
    for key, value in items:
        v = target.add(key=key).value
        if isinstance(value, bool):
            v.bool_value = value
        elif isinstance(value, int):
            v.int_value = value
        elif isinstance(value, float):
            v.double_value = value
        else:
            v.string_value = value


def _stable(*parts: Any, bits: int = 128) -> int:
    """A hash that is the same in every process (``hash()`` of a str is not)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=bits // 8).digest()
    return int.from_bytes(digest, "big")


def _pod_resource(service: str, pod: int) -> list[tuple[str, Any]]:
    language, sdk_version, _calls, _db = _SHOP[service]
    replica = (
        f"{service}-{_stable(service, bits=32) % 0xFFFFFF:06x}-{_stable(service, pod, bits=32) % 10**5:05d}"
    )
    return [
        ("service.name", service),
        ("service.namespace", "shop"),
        ("service.version", f"2.{len(service) % 5}.{pod % 2}"),
        ("service.instance.id", str(uuid.UUID(int=_stable(service, pod), version=4))),
        ("deployment.environment.name", "production"),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.language", language),
        ("telemetry.sdk.version", sdk_version),
        ("host.name", f"ip-10-0-{pod % 4}-{17 + pod % 7}.eu-west-1.compute.internal"),
        ("host.arch", "amd64"),
        ("os.type", "linux"),
        ("process.pid", 1),
        ("k8s.cluster.name", "prod-eu-west-1"),
        ("k8s.namespace.name", "shop"),
        ("k8s.deployment.name", service),
        ("k8s.pod.name", replica),
        ("k8s.pod.uid", str(uuid.UUID(int=_stable(service, pod, "uid"), version=4))),
        ("k8s.node.name", f"ip-10-0-{pod % 4}-{17 + pod % 7}.eu-west-1.compute.internal"),
        ("container.id", f"{_stable(service, pod, 'container', bits=256):064x}"),
        ("cloud.provider", "aws"),
        ("cloud.region", "eu-west-1"),
        ("cloud.availability_zone", f"eu-west-1{'abc'[pod % 3]}"),
    ]


class _Batches:
    """Per pod and instrumentation scope, records collected into export requests (like the SDK's batch
    processor: one resource per request, up to ``size`` records)."""

    def __init__(self, size: int, new_request: Any, resource_field: str, scope_field: str, records: str):
        self.size, self.new_request = size, new_request
        self.fields = (resource_field, scope_field, records)
        self.open: dict[tuple[str, int], tuple[Any, dict[tuple[str, str], Any], int]] = {}
        self.done: list[bytes] = []

    def record(self, service: str, pod: int, scope: tuple[str, str]) -> Any:
        resource_field, scope_field, records = self.fields
        key = (service, pod)
        if key in self.open and self.open[key][2] >= self.size:
            self.flush(key)
        if key not in self.open:
            req = self.new_request()
            res = getattr(req, resource_field).add()
            res.schema_url = "https://opentelemetry.io/schemas/1.27.0"
            _add_attrs(res.resource.attributes, _pod_resource(service, pod))
            self.open[key] = (req, {}, 0)
        req, scopes, count = self.open[key]
        if scope not in scopes:
            holder = getattr(getattr(req, resource_field)[0], scope_field).add()
            holder.scope.name, holder.scope.version = scope
            scopes[scope] = holder
        self.open[key] = (req, scopes, count + 1)
        return getattr(scopes[scope], records).add()

    def flush(self, key: tuple[str, int] | None = None) -> list[bytes]:
        for k in [key] if key else list(self.open):
            req, _scopes, _count = self.open.pop(k)
            self.done.append(req.SerializeToString())
        return self.done


def _active(rng: random.Random) -> int:
    """Which of the shop's active users (or client addresses) this is: a few are very active, most not."""
    return min(int(rng.expovariate(1 / 3000)), 50_000)


def _user(rng: random.Random) -> str:
    return str(uuid.UUID(int=_stable("user", _active(rng)), version=4))


def _client_ip(rng: random.Random) -> str:
    k = _stable("ip", _active(rng), bits=32)
    return f"{1 + k % 222}.{k >> 8 & 255}.{k >> 16 & 255}.{k >> 24 & 255}"


def _hex_id(rng: random.Random, nbytes: int) -> bytes:
    return rng.getrandbits(8 * nbytes).to_bytes(nbytes, "big")


def realistic_traces(
    spans: int, rng: random.Random, end_ns: int, seconds: float = 900.0, pods: int = 3
) -> list[bytes]:
    """About ``spans`` spans of requests entering ``frontend`` and fanning out, as export requests of at
    most 512 spans per pod; request starts spread over the ``seconds`` before ``end_ns``."""
    batches = _Batches(512, ExportTraceServiceRequest, "resource_spans", "scope_spans", "spans")
    made = 0
    start0 = end_ns - int(seconds * 1e9)
    while made < spans:
        trace_id = _hex_id(rng, 16)
        start = start0 + int(rng.random() * seconds * 1e9)
        user = _user(rng) if rng.random() < 0.7 else ""
        agent = rng.choice(_USER_AGENTS)
        made += _serve(batches, rng, "frontend", trace_id, b"", start, user, agent, depth=0)
    return batches.flush()


def _serve(
    batches: _Batches,
    rng: random.Random,
    service: str,
    trace_id: bytes,
    parent: bytes,
    start: int,
    user: str,
    agent: str,
    depth: int,
) -> int:
    """A SERVER span of ``service`` and everything it calls; returns the spans made."""
    language, _v, calls, db = _SHOP[service]
    pod = rng.randrange(3)
    route = rng.choice(_ROUTES[service])
    method = "GET" if rng.random() < 0.75 else "POST"
    path = route.replace("{id}", str(rng.randrange(1, 10**6)) if rng.random() < 0.5 else _uuid(rng))
    span_id = _hex_id(rng, 8)
    made, cursor = 1, start + rng.randrange(50_000, 400_000)
    children: list[tuple[int, int]] = []
    if db:
        for _ in range(rng.choice([1, 1, 2, 3, 4])):
            made += 1
            cursor = _db_span(batches, rng, service, pod, db, trace_id, span_id, cursor) + rng.randrange(
                10**5
            )
    if depth < 2:
        for callee in rng.sample(calls, k=min(len(calls), rng.choice([0, 1, 1, 2, 3]))):
            client_id = _hex_id(rng, 8)
            call_start = cursor + rng.randrange(10_000, 200_000)
            callee_made = _serve(
                batches, rng, callee, trace_id, client_id, call_start + 300_000, user, agent, depth + 1
            )
            made += callee_made + 1
            call_end = call_start + 600_000 + int(rng.lognormvariate(15.5, 0.9))
            children.append((call_start, call_end))
            status = 200 if rng.random() > 0.02 else 503
            _http_client(
                batches, rng, service, pod, callee, trace_id, span_id, client_id, call_start, call_end, status
            )
            cursor = call_end
    end = cursor + int(rng.lognormvariate(13.5, 1.0))
    error = rng.random() < 0.015
    status = 500 if error else rng.choice([200] * 30 + [201, 204, 302, 400, 404])
    scope = _INSTRUMENTATION[language]
    span = batches.record(service, pod, scope)
    span.trace_id, span.span_id, span.parent_span_id = trace_id, span_id, parent
    span.name, span.kind = f"{method} {route}", 2
    span.start_time_unix_nano, span.end_time_unix_nano = start, end
    span.flags = 0x301 if parent else 0x101
    attrs = [
        ("http.request.method", method),
        ("http.route", route),
        ("url.path", path),
        ("url.scheme", "http"),
        ("http.response.status_code", status),
        ("server.address", f"{service}.shop.svc.cluster.local" if depth else "shop.example.com"),
        ("server.port", 8080 if depth else 443),
        ("network.protocol.version", "1.1"),
        ("client.address", f"10.0.{rng.randrange(4)}.{rng.randrange(2, 250)}"),
    ]
    if depth == 0:
        attrs.append(("user_agent.original", agent))
        if user:
            attrs.append(("enduser.id", user))
    _add_attrs(span.attributes, attrs)
    if error:
        span.status.code, span.status.message = 2, "upstream connect error or disconnect/reset before headers"
        event = span.events.add(time_unix_nano=end - rng.randrange(10**5), name="exception")
        stack = _STACK.format(svc=service, l1=rng.randrange(40, 400), l2=rng.randrange(40, 400))
        _add_attrs(
            event.attributes,
            [
                ("exception.type", "urllib3.exceptions.ProtocolError"),
                (
                    "exception.message",
                    "('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))",
                ),
                ("exception.stacktrace", stack),
            ],
        )
    return made


def _http_client(
    batches: _Batches,
    rng: random.Random,
    service: str,
    pod: int,
    callee: str,
    trace_id: bytes,
    parent: bytes,
    span_id: bytes,
    start: int,
    end: int,
    status: int,
) -> None:
    language = _SHOP[service][0]
    span = batches.record(
        service, pod, (_INSTRUMENTATION[language][0] + ".client", _INSTRUMENTATION[language][1])
    )
    route = rng.choice(_ROUTES[callee])
    method = "GET" if rng.random() < 0.75 else "POST"
    span.trace_id, span.span_id, span.parent_span_id = trace_id, span_id, parent
    span.name, span.kind, span.flags = method, 3, 0x301
    span.start_time_unix_nano, span.end_time_unix_nano = start, end
    url = f"http://{callee}.shop.svc.cluster.local:8080" + route.replace("{id}", str(rng.randrange(1, 10**6)))
    _add_attrs(
        span.attributes,
        [
            ("http.request.method", method),
            ("url.full", url),
            ("server.address", f"{callee}.shop.svc.cluster.local"),
            ("server.port", 8080),
            ("network.peer.address", f"10.1.{rng.randrange(4)}.{rng.randrange(2, 250)}"),
            ("http.response.status_code", status),
        ],
    )
    if status >= 500:
        span.status.code = 2


def _db_span(
    batches: _Batches,
    rng: random.Random,
    service: str,
    pod: int,
    db: str,
    trace_id: bytes,
    parent: bytes,
    start: int,
) -> int:
    span = batches.record(service, pod, (_DB_SCOPE[db], "0.48b0"))
    span.trace_id, span.span_id, span.parent_span_id = trace_id, _hex_id(rng, 8), parent
    span.kind, span.flags = 3, 0x301
    end = start + int(rng.lognormvariate(13.0, 1.1))
    span.start_time_unix_nano, span.end_time_unix_nano = start, end
    if db == "postgresql":
        table = rng.choice(_TABLES)
        statement = rng.choice(_SQL).format(t=table)
        operation = statement.split()[0]
        span.name = f"{operation} {table}"
        attrs: list[tuple[str, Any]] = [
            ("db.system", "postgresql"),
            ("db.namespace", "shop"),
            ("db.operation.name", operation),
            ("db.collection.name", table),
            ("db.query.text", statement),
            ("server.address", "shop-db.cluster-c9x2k.eu-west-1.rds.amazonaws.com"),
            ("server.port", 5432),
        ]
    elif db == "redis":
        op = rng.choice(["GET", "GET", "SET", "HGETALL", "EXPIRE"])
        span.name = op
        attrs = [
            ("db.system", "redis"),
            ("db.operation.name", op),
            ("db.query.text", f"{op} session:{_hex_id(rng, 16).hex()}"),
            ("server.address", "redis-master.shop.svc.cluster.local"),
            ("server.port", 6379),
            ("db.namespace", "0"),
        ]
    else:
        span.name = "search"
        attrs = [
            ("db.system", "elasticsearch"),
            ("db.operation.name", "search"),
            ("url.full", "http://search-es:9200/products/_search"),
            ("server.address", "search-es"),
            ("server.port", 9200),
        ]
    _add_attrs(span.attributes, attrs)
    return end


# A service's log statements: (weight, severity, function, line, template). The first one opens a request;
# the code location is the statement's, as the SDKs' logging bridges record it.
_LOG_LINES = [
    (0, 9, "dispatch", 88, "Handling {method} {path} for user {user}"),
    (30, 9, "load_cart", 141, "Fetched {n} items from cart {cart} in {ms:.1f} ms"),
    (20, 9, "create_order", 212, "Order {order} created: {n} items, total {amount:.2f} EUR"),
    (
        15,
        9,
        "authorise",
        57,
        "Payment {payment} authorised for order {order} (amount={amount:.2f}, currency=EUR)",
    ),
    (12, 5, "get_product", 33, "cache hit key=product:{item} ttl={n}s"),
    (12, 5, "execute", 402, "SQL query took {ms:.2f} ms rows={n}"),
    (
        4,
        13,
        "call_inventory",
        97,
        "Slow response from inventory: {slow} ms (threshold 500 ms) for item {item}",
    ),
    (
        3,
        13,
        "call_gateway",
        160,
        "Retrying request to payment-gateway attempt={attempt} after {backoff} ms: HTTP 503",
    ),
    (
        1,
        17,
        "reserve",
        301,
        "Failed to reserve stock for item {item} in order {order}: insufficient quantity ({n} left)",
    ),
]
_LINE_WEIGHTS = [w for w, *_ in _LOG_LINES[1:]]
# time resolution of the log bridges: Python (float seconds) and Java (Instant) µs, Go ns, Node.js ms
_LOG_RESOLUTION = {"python": 1_000, "java": 1_000, "go": 1, "nodejs": 1_000_000}
_SOURCE = {
    "python": "/app/shop/{svc}/handlers.py",
    "java": "com.shop.{svc}.web.Controller",
    "go": "/src/shop/{svc}/handler.go",
    "nodejs": "/app/src/{svc}/routes.js",
}


def realistic_logs(records: int, rng: random.Random, end_ns: int, seconds: float = 900.0) -> list[bytes]:
    """About ``records`` log records: application logs written while serving requests (in bursts of 3-8
    lines sharing the trace context), nginx access logs and structured JSON logs from workers (no trace
    context), as export requests of at most 512 records per pod."""
    batches = _Batches(512, ExportLogsServiceRequest, "resource_logs", "scope_logs", "log_records")
    made = 0
    start0 = end_ns - int(seconds * 1e9)
    services = [s for s in _SHOP if s != "frontend"]
    while made < records:
        ts = start0 + int(rng.random() * seconds * 1e9)
        kind = rng.random()
        if kind < 0.6:
            made += _request_logs(batches, rng, rng.choice(services), ts)
        elif kind < 0.85:
            made += 1
            _access_log(batches, rng, ts)
        else:
            made += 1
            _json_log(batches, rng, rng.choice(services), ts)
    return batches.flush()


def _log_values(rng: random.Random, user: str) -> dict[str, Any]:
    cart = _uuid(rng)
    return {
        "method": rng.choice(["GET", "GET", "POST"]),
        "path": f"/api/cart/{cart}",
        "user": user,
        "n": rng.randrange(1, 40),
        "cart": cart,
        "ms": rng.lognormvariate(2.5, 1.0),
        "order": rng.randrange(10**6, 10**7),
        "amount": rng.random() * 400,
        "payment": f"pay_{_hex_id(rng, 12).hex()}",
        "item": rng.randrange(1, 50_000),
    }


def _request_logs(batches: _Batches, rng: random.Random, service: str, ts: int) -> int:
    language = _SHOP[service][0]
    pod = rng.randrange(3)
    trace_id, span_id = _hex_id(rng, 16), _hex_id(rng, 8)
    lines = rng.randrange(3, 9)
    logger = {
        "python": "shop.handlers",
        "java": "com.shop.web.OrderController",
        "go": "main",
        "nodejs": "app",
    }
    values = _log_values(rng, _user(rng))  # one request is about one user, cart, order, payment
    resolution = _LOG_RESOLUTION[language]
    source = _SOURCE[language].format(svc=service)
    for i in range(lines):
        statement = _LOG_LINES[0] if i == 0 else rng.choices(_LOG_LINES[1:], _LINE_WEIGHTS)[0]
        _w, severity, function, lineno, template = statement
        if rng.random() < 0.3:
            span_id = _hex_id(rng, 8)
        values.update(
            n=rng.randrange(1, 40),
            ms=rng.lognormvariate(2.5, 1.0),
            item=rng.randrange(1, 50_000),
            slow=rng.randrange(500, 3000),
            attempt=rng.randrange(1, 4),
            backoff=rng.choice([100, 200, 400, 800]),
        )
        rec = batches.record(service, pod, (logger[language], ""))
        written = ts + i * rng.randrange(200_000, 3_000_000)
        rec.time_unix_nano = written - written % resolution
        rec.observed_time_unix_nano = written + rng.randrange(1_000, 50_000)
        rec.severity_number = severity
        rec.severity_text = {5: "DEBUG", 9: "INFO", 13: "WARN", 17: "ERROR"}[severity]
        rec.body.string_value = template.format(**values)
        rec.trace_id, rec.span_id, rec.flags = trace_id, span_id, 1
        code = "code.namespace" if language == "java" else "code.filepath"
        attrs: list[tuple[str, Any]] = [(code, source), ("code.function", function), ("code.lineno", lineno)]
        if language in ("java", "python"):
            attrs.append(("thread.name", f"worker-{rng.randrange(8)}"))
        if severity >= 17:
            stack = _STACK.format(svc=service, l1=lineno, l2=rng.randrange(40, 400))
            attrs += [("exception.type", "ProtocolError"), ("exception.stacktrace", stack)]
        _add_attrs(rec.attributes, attrs)
    return lines


def _polled(ts: int, rng: random.Random) -> int:
    """When the collector's file log receiver read a line written at ``ts`` (it polls every 200 ms)."""
    poll = 200 * 10**6
    return ts - ts % poll + poll + rng.randrange(5_000, 400_000)


def _access_log(batches: _Batches, rng: random.Random, ts: int) -> None:
    pod = rng.randrange(3)
    rec = batches.record("frontend", pod, ("filelog", ""))
    rec.time_unix_nano = ts - ts % 10**9  # the access log's time has seconds
    rec.observed_time_unix_nano = _polled(ts, rng)
    status = rng.choice([200] * 30 + [301, 304, 404, 499, 502])
    rec.severity_number, rec.severity_text = (9, "INFO") if status < 500 else (17, "ERROR")
    path = (
        rng.choice(["/", "/cart", "/checkout", "/search?q=red+shoes"])
        if rng.random() < 0.5
        else (f"/product/{rng.randrange(1, 50_000)}")
    )
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(ts // 10**9))
    rec.body.string_value = (
        f"{_client_ip(rng)} - - [{stamp}] "
        f'"GET {path} HTTP/1.1" {status} {rng.randrange(200, 90_000)} "https://shop.example.com/" '
        f'"{rng.choice(_USER_AGENTS)}" {rng.lognormvariate(-4, 1):.3f}'
    )
    _add_attrs(
        rec.attributes,
        [
            ("log.file.path", f"/var/log/pods/shop_frontend-{pod}/nginx/0.log"),
            ("log.iostream", "stdout"),
            ("logtag", "F"),
        ],
    )


def _json_log(batches: _Batches, rng: random.Random, service: str, ts: int) -> None:
    pod = rng.randrange(3)
    rec = batches.record(service, pod, ("filelog", ""))
    ts -= ts % 10**6  # the JSON line's time has milliseconds
    rec.time_unix_nano = ts
    rec.observed_time_unix_nano = _polled(ts, rng)
    rec.severity_number, rec.severity_text = 9, "INFO"
    event = rng.choice(["job finished", "message consumed", "cache refreshed", "batch exported"])
    rec.body.string_value = (
        f'{{"level":"info","ts":"{time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 10**9))}.'
        f'{ts % 10**9 // 10**6:03d}Z","msg":"{event}","job_id":"{_uuid(rng)}",'
        f'"duration_ms":{rng.lognormvariate(4, 1):.1f},"records":{rng.randrange(1, 5000)},'
        f'"partition":{rng.randrange(12)},"offset":{rng.randrange(10**9)}}}'
    )
    _add_attrs(rec.attributes, [("log.file.path", f"/var/log/pods/shop_{service}-{pod}/app/0.log")])


_HISTOGRAM_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]


def realistic_metrics(points: int, rng: random.Random, end_ns: int, interval_s: int = 15) -> list[bytes]:
    """About ``points`` data points: every pod of every service exports its metrics every ``interval_s``
    seconds (cumulative counters, gauges, HTTP duration histograms per route and status), one request
    per pod and collection, ending at ``end_ns``."""
    series_state: dict[tuple[Any, ...], Any] = {}
    pods = [(service, pod) for service in _SHOP for pod in range(3)]
    per_collection = sum(len(_pod_series(s)) for s, _p in pods)
    collections = max(1, points // per_collection)
    process_start = end_ns - (collections + 100) * interval_s * 10**9
    requests = []
    for c in range(collections):
        now = end_ns - (collections - 1 - c) * interval_s * 10**9
        for service, pod in pods:
            req = ExportMetricsServiceRequest()
            rm = req.resource_metrics.add()
            rm.schema_url = "https://opentelemetry.io/schemas/1.27.0"
            _add_attrs(rm.resource.attributes, _pod_resource(service, pod))
            sm = rm.scope_metrics.add()
            sm.scope.name, sm.scope.version = _INSTRUMENTATION[_SHOP[service][0]]
            collected = now + rng.randrange(10**6)  # one timestamp per collection, as the SDK does
            by_name: dict[str, Any] = {}
            for name, unit, kind, labels in _pod_series(service):
                metric = by_name.get(name)
                if metric is None:
                    metric = by_name[name] = sm.metrics.add(
                        name=name, unit=unit, description=_DESCRIPTIONS[name]
                    )
                key = (service, pod, name, labels)
                _metric_point(
                    metric, kind, labels, series_state, key, rng, process_start, collected, interval_s
                )
            requests.append(req.SerializeToString())
    return requests


_DESCRIPTIONS = {
    "http.server.request.duration": "Duration of HTTP server requests.",
    "http.server.active_requests": "Number of active HTTP server requests.",
    "process.cpu.time": "Total CPU seconds broken down by different CPU modes.",
    "process.memory.usage": "The amount of physical memory in use.",
    "process.thread.count": "Process threads count.",
    "db.client.connection.count": "The number of connections that are currently in state described by "
    "the state attribute.",
    "runtime.gc.count": "Number of garbage collections.",
    "system.cpu.utilization": "Difference in system.cpu.time since the last measurement, divided by the "
    "elapsed time and number of CPUs.",
}


def _pod_series(service: str) -> list[tuple[str, str, str, tuple[tuple[str, Any], ...]]]:
    series: list[tuple[str, str, str, tuple[tuple[str, Any], ...]]] = []
    for route in _ROUTES[service]:
        for status in (200, 404, 500) if service == "frontend" else (200, 500):
            labels = (
                ("http.request.method", "GET"),
                ("http.route", route),
                ("http.response.status_code", status),
                ("url.scheme", "http"),
            )
            series.append(("http.server.request.duration", "s", "histogram", labels))
    series.append(
        (
            "http.server.active_requests",
            "{request}",
            "updown",
            (("http.request.method", "GET"), ("url.scheme", "http")),
        )
    )
    for mode in ("user", "system", "wait"):
        series.append(("process.cpu.time", "s", "counter", (("cpu.mode", mode),)))
    series.append(("process.memory.usage", "By", "gauge_int", ()))
    series.append(("process.thread.count", "{thread}", "gauge_int", ()))
    for state in ("idle", "used"):
        series.append(
            (
                "db.client.connection.count",
                "{connection}",
                "updown",
                (("db.client.connection.pool.name", "shop"), ("db.client.connection.state", state)),
            )
        )
    for generation in ("0", "1", "2"):
        series.append(("runtime.gc.count", "{collection}", "counter_int", (("gc.generation", generation),)))
    for cpu in range(4):
        for state in ("user", "system", "idle"):
            series.append(
                ("system.cpu.utilization", "1", "gauge", (("cpu.logical_number", cpu), ("cpu.mode", state)))
            )
    return series


def _metric_point(
    metric: Any,
    kind: str,
    labels: tuple[tuple[str, Any], ...],
    state: dict[tuple[Any, ...], Any],
    key: tuple[Any, ...],
    rng: random.Random,
    process_start: int,
    now: int,
    interval_s: int,
) -> None:
    if kind == "histogram":
        metric.histogram.aggregation_temporality = 2
        counts = state.setdefault(key, [0] * (len(_HISTOGRAM_BOUNDS) + 1))
        rate = (
            0
            if dict(labels)["http.response.status_code"] == 500 and rng.random() < 0.8
            else rng.randrange(40)
        )
        for _ in range(rate):
            bucket = min(len(_HISTOGRAM_BOUNDS), max(0, int(rng.lognormvariate(1.5, 0.8))))
            counts[bucket] += 1
        total = sum(counts)
        dp = metric.histogram.data_points.add(
            start_time_unix_nano=process_start,
            time_unix_nano=now,
            count=total,
            sum=state.setdefault((*key, "sum"), 0.0) + rate * 0.043,
            bucket_counts=counts,
            explicit_bounds=_HISTOGRAM_BOUNDS,
        )
        state[(*key, "sum")] = dp.sum
        if total:
            dp.min, dp.max = 0.0021, 1.93
    elif kind in ("counter", "counter_int"):
        metric.sum.aggregation_temporality, metric.sum.is_monotonic = 2, True
        value = state.get(key, 0.0) + (
            rng.random() * interval_s * 0.2 if kind == "counter" else rng.randrange(3)
        )
        state[key] = value
        dp = metric.sum.data_points.add(start_time_unix_nano=process_start, time_unix_nano=now)
        if kind == "counter":
            dp.as_double = value
        else:
            dp.as_int = int(value)
    elif kind == "updown":
        metric.sum.aggregation_temporality, metric.sum.is_monotonic = 2, False
        value = max(0, state.get(key, 5) + rng.randrange(-2, 3))
        state[key] = value
        dp = metric.sum.data_points.add(
            start_time_unix_nano=process_start, time_unix_nano=now, as_int=int(value)
        )
    elif kind == "gauge_int":
        value = state.get(key, 300 * 2**20) + rng.randrange(-(2**20), 2**20)
        state[key] = value
        dp = metric.gauge.data_points.add(time_unix_nano=now, as_int=int(value))
    else:
        value = min(1.0, max(0.0, state.get(key, 0.2) + rng.gauss(0, 0.02)))
        state[key] = value
        dp = metric.gauge.data_points.add(time_unix_nano=now, as_double=round(value, 4))
    _add_attrs(dp.attributes, list(labels))
