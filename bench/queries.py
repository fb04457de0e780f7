"""Query latency on a day of telemetry: `python -m bench.queries`.

Loads 10 M spans and 10 M log records of one tenant, spread over the last 24 hours in arrival order, into a
temporary embedded engine through the real insert path (framed segments, ``Backend.insert_otlp_segment``,
so every materialized view fills as in production), then times the read helpers the UI calls most:

- RED of every service over the last hour (``services.service_red``),
- one trace by id (``traces.get_trace``; a different trace each run),
- a log search over the 24 hours for a rare id, once mixed-case alphanumeric and once hexadecimal
  (``logs.search_logs``; ids of both kinds fill the other log lines too),
- the service topology of the last hour (``topology.service_topology``),

and reports p50/p95 over repeated runs against the targets; then the main REST endpoints on the same data
(``run_api``). Output: a table on stdout, var/bench/queries.json (with ``EXPLAIN indexes = 1`` of each
statement, to see what the indexes skip) and the REST figures under "rest" in var/bench/api.json.

Generating 20 M realistic records in Python would take longer than storing them, so a few realistic OTLP
requests are built once (a call graph of 13 services with gRPC, database and queue calls, errors with
exception events; log lines with ids in their bodies) and copied with numpy: each copy gets new trace and
span ids, its own timestamps and new ids in the log bodies, patched at their byte offsets in the serialized
request. The bytes stay valid OTLP: the patched fields are fixed-size (fixed64 times, 16- and 8-byte ids,
id text of a fixed length).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

REPO = Path(__file__).resolve().parent.parent
NS = 1_000_000_000
HOUR = 3600 * NS
DAY = 24 * HOUR
TEMPLATE_BASE = 1_500_000_000 * NS  # template times are relative to this; each copy moves them
TARGETS_MS = {"red": 20.0, "trace": 20.0, "log_search": 100.0, "topology": 50.0}
ID_LENGTH = 16
B62 = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)


# --- a realistic trace: the call graph of a small shop ---------------------------------------------------

# (service, operation) -> downstream calls; a call to a service is a CLIENT span in the caller plus a
# SERVER span in the callee; a call to a database or queue is one CLIENT/PRODUCER span with its attributes.
GRAPH: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("frontend", "GET /"): [
        ("auth", "AuthService/ValidateToken"),
        ("ad", "AdService/GetAds"),
        ("recommendation", "RecommendationService/ListRecommendations"),
        ("currency", "CurrencyService/GetSupportedCurrencies"),
    ],
    ("frontend", "GET /product/{id}"): [
        ("auth", "AuthService/ValidateToken"),
        ("catalog", "CatalogService/GetProduct"),
        ("recommendation", "RecommendationService/ListRecommendations"),
        ("currency", "CurrencyService/Convert"),
    ],
    ("frontend", "POST /cart"): [("auth", "AuthService/ValidateToken"), ("cart", "CartService/AddItem")],
    ("frontend", "POST /checkout"): [
        ("auth", "AuthService/ValidateToken"),
        ("checkout", "CheckoutService/PlaceOrder"),
    ],
    ("frontend", "GET /search"): [("auth", "AuthService/ValidateToken"), ("search", "SearchService/Query")],
    ("auth", "AuthService/ValidateToken"): [("redis", "GET session:?")],
    ("ad", "AdService/GetAds"): [],
    ("recommendation", "RecommendationService/ListRecommendations"): [
        ("catalog", "CatalogService/ListProducts")
    ],
    ("catalog", "CatalogService/ListProducts"): [
        ("postgresql", "SELECT id, name, price FROM products WHERE category = $1 LIMIT 20")
    ],
    ("catalog", "CatalogService/GetProduct"): [("postgresql", "SELECT * FROM products WHERE id = $1")],
    ("currency", "CurrencyService/GetSupportedCurrencies"): [],
    ("currency", "CurrencyService/Convert"): [],
    ("cart", "CartService/AddItem"): [("redis", "HSET cart:? ? ?")],
    ("cart", "CartService/GetCart"): [("redis", "HGETALL cart:?")],
    ("cart", "CartService/EmptyCart"): [("redis", "DEL cart:?")],
    ("checkout", "CheckoutService/PlaceOrder"): [
        ("cart", "CartService/GetCart"),
        ("catalog", "CatalogService/GetProduct"),
        ("currency", "CurrencyService/Convert"),
        ("payment", "PaymentService/Charge"),
        ("shipping", "ShippingService/ShipOrder"),
        ("email", "EmailService/SendOrderConfirmation"),
        ("cart", "CartService/EmptyCart"),
        ("kafka", "orders publish"),
    ],
    ("payment", "PaymentService/Charge"): [
        ("postgresql", "INSERT INTO payments (order_id, amount, currency) VALUES ($1, $2, $3)")
    ],
    ("shipping", "ShippingService/ShipOrder"): [
        ("postgresql", "UPDATE shipments SET status = $1 WHERE order_id = $2")
    ],
    ("email", "EmailService/SendOrderConfirmation"): [],
    ("search", "SearchService/Query"): [("elasticsearch", "POST /products/_search")],
    ("accounting", "orders process"): [("postgresql", "INSERT INTO ledger VALUES ($1, $2, $3)")],
}
ROOTS = [
    ("GET /", 30),
    ("GET /product/{id}", 30),
    ("POST /cart", 15),
    ("GET /search", 15),
    ("POST /checkout", 10),
]
STORES = {"redis": "redis", "postgresql": "postgresql", "elasticsearch": "elasticsearch"}
# (service, operation) -> (probability, exception type, message)
FAILURES = {
    ("payment", "PaymentService/Charge"): (
        0.03,
        "CardDeclinedError",
        "card ending {n} declined: do not honor",
    ),
    ("currency", "CurrencyService/Convert"): (0.005, "TimeoutError", "rate provider timed out after 2000 ms"),
    ("ad", "AdService/GetAds"): (0.01, "UnavailableError", "ad index is rebuilding, try again"),
}
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5


@dataclass
class _Span:
    service: str
    name: str
    kind: int
    span_id: bytes
    parent: bytes
    start: int
    end: int = 0
    error: str = ""
    exception: tuple[str, str] | None = None
    attributes: dict[str, str | int] = field(default_factory=dict)


class _TraceBuilder:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.spans: list[_Span] = []

    def _id(self) -> bytes:
        return self.rng.bytes(8)

    def _ms(self, median: float) -> int:
        return int(self.rng.lognormal(math.log(median * 1_000_000), 0.6))

    def serve(self, service: str, op: str, parent: bytes, start: int, kind: int = SERVER) -> _Span:
        span = _Span(service, op, kind, self._id(), parent, start)
        if kind == SERVER and service == "frontend":
            span.attributes.update(
                {
                    "http.request.method": op.split()[0],
                    "http.route": op.split()[1],
                    "url.path": op.split()[1].replace("{id}", str(self.rng.integers(1000, 99999))),
                    "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
                }
            )
        elif kind == SERVER:
            rpc_service, method = op.split("/")
            span.attributes.update({"rpc.system": "grpc", "rpc.service": rpc_service, "rpc.method": method})
        else:
            span.attributes.update({"messaging.system": "kafka", "messaging.destination.name": "orders"})
        self.spans.append(span)
        t = start + self._ms(0.3)
        failed = False
        for callee, callee_op in GRAPH[(service, op)]:
            call = self.call(span, callee, callee_op, t)
            t = call.end + self._ms(0.1)
            failed = failed or bool(call.error)
        span.end = t + self._ms(1 if service != "frontend" else 3)
        failure = FAILURES.get((service, op))
        if failure and self.rng.random() < failure[0]:
            kind_name, message = failure[1], failure[2].format(n=self.rng.integers(1000, 9999))
            span.error, span.exception = message, (kind_name, message)
        elif failed and service in ("frontend", "checkout"):
            span.error = "downstream call failed"
        if service == "frontend":
            span.attributes["http.response.status_code"] = 500 if span.error else 200
        return span

    def call(self, caller: _Span, callee: str, op: str, start: int) -> _Span:
        if callee in STORES:
            span = _Span(
                caller.service, op.split()[0] + " " + callee, CLIENT, self._id(), caller.span_id, start
            )
            span.attributes.update(
                {
                    "db.system": callee,
                    "db.statement": op,
                    "server.address": f"{callee}.data.svc",
                    "server.port": 5432,
                }
            )
            span.end = start + self._ms(2 if callee != "elasticsearch" else 12)
            self.spans.append(span)
            return span
        if callee == "kafka":
            span = _Span(caller.service, op, PRODUCER, self._id(), caller.span_id, start)
            span.attributes.update({"messaging.system": "kafka", "messaging.destination.name": "orders"})
            span.end = start + self._ms(1)
            self.spans.append(span)
            self.serve("accounting", "orders process", span.span_id, span.end + self._ms(20), CONSUMER)
            return span
        span = _Span(caller.service, op, CLIENT, self._id(), caller.span_id, start)
        span.attributes.update(
            {
                "rpc.system": "grpc",
                "peer.service": callee,
                "server.address": f"{callee}:8080",
                "server.port": 8080,
            }
        )
        self.spans.append(span)
        server = self.serve(callee, op, span.span_id, start + self._ms(0.2))
        span.end = server.end + self._ms(0.2)
        span.error = server.error
        return span


def _trace(rng: np.random.Generator, start: int) -> list[_Span]:
    names, weights = zip(*ROOTS, strict=True)
    root = str(rng.choice(names, p=np.array(weights) / sum(weights)))
    builder = _TraceBuilder(rng)
    builder.serve("frontend", root, b"", start)
    return builder.spans


def _resource(container: Any, service: str, pod: int) -> Any:
    item = container.add()
    for key, value in (
        ("service.name", service),
        ("service.namespace", "shop"),
        ("service.version", "1.12.3"),
        ("deployment.environment", "production"),
        ("host.name", f"node-{pod % 7}"),
        ("k8s.pod.name", f"{service}-6d9f8b7c5-{pod:05d}"),
        ("telemetry.sdk.language", "go" if service in ("checkout", "shipping") else "python"),
    ):
        item.resource.attributes.add(key=key).value.string_value = value
    return item


def _set(attributes: Any, values: dict[str, str | int]) -> None:
    for key, value in values.items():
        if isinstance(value, int):
            attributes.add(key=key).value.int_value = value
        else:
            attributes.add(key=key).value.string_value = value


# --- templates: a serialized request and where its per-copy fields are -----------------------------------


@dataclass(frozen=True)
class Template:
    """A serialized request plus the byte offsets of what each copy changes."""

    payload: np.ndarray  # uint8
    records: int
    times: np.ndarray  # uint64, each time as in the template (TEMPLATE_BASE + offset)
    time_offsets: np.ndarray  # int64, offset of each fixed64 time
    trace_offsets: np.ndarray  # int64, offset of each 16-byte trace id occurrence
    trace_index: np.ndarray  # int64, which trace of the template each occurrence belongs to
    traces: int
    span_offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # 8-byte span ids
    span_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (as span or parent)
    spans: int = 0
    id_offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # ID_LENGTH-byte ids
    id_hex: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # the id is hexadecimal


def _offsets(data: bytes, needle: bytes, expected: int) -> list[int]:
    found, at = [], data.find(needle)
    while at >= 0:
        found.append(at)
        at = data.find(needle, at + 1)
    if len(found) != expected:
        raise ValueError(f"template value found {len(found)} times, expected {expected}")
    return found


def _occurrences(data: bytes, values: list[bytes], uses: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Offsets of every occurrence of each value, and which value each offset belongs to."""
    offsets, index = [], []
    for i, (value, expected) in enumerate(zip(values, uses, strict=True)):
        for at in _offsets(data, value, expected):
            offsets.append(at)
            index.append(i)
    return np.array(offsets, np.int64), np.array(index, np.int64)


def _locate(
    data: bytes,
    times: list[int],
    trace_ids: list[bytes],
    trace_uses: list[int],
    ids: list[bytes],
    span_ids: list[bytes] | None = None,
    span_uses: list[int] | None = None,
) -> dict[str, Any]:
    trace_offsets, trace_index = _occurrences(data, trace_ids, trace_uses)
    span_offsets, span_index = _occurrences(data, span_ids or [], span_uses or [])
    return {
        "times": np.array(times, np.uint64),
        "time_offsets": np.array([_offsets(data, t.to_bytes(8, "little"), 1)[0] for t in times], np.int64),
        "trace_offsets": trace_offsets,
        "trace_index": trace_index,
        "span_offsets": span_offsets,
        "span_index": span_index,
        "spans": len(span_ids or []),
        "id_offsets": np.array([_offsets(data, i, 1)[0] for i in ids], np.int64),
    }


class _UniqueTimes:
    """Template times that occur once in the payload (so that their offsets can be found)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.used, self.order = rng, set[int](), list[int]()

    def __call__(self, t: int) -> int:
        t = TEMPLATE_BASE + t
        while t in self.used:
            t += int(self.rng.integers(1, 1000))
        self.used.add(t)
        self.order.append(t)
        return t


def trace_template(rng: np.random.Generator, spans: int, spread_ns: int) -> Template:
    """About ``spans`` spans in whole traces starting within ``spread_ns``, one resource per service."""
    traces: list[list[_Span]] = []
    while sum(map(len, traces)) < spans:
        traces.append(_trace(rng, int(rng.integers(0, spread_ns))))
    trace_ids = [rng.bytes(16) for _ in traces]
    unique = _UniqueTimes(rng)
    req = ExportTraceServiceRequest()
    scopes: dict[str, Any] = {}
    for trace_id, trace in zip(trace_ids, traces, strict=True):
        for s in trace:
            if s.service not in scopes:
                rs = _resource(req.resource_spans, s.service, int(rng.integers(100)))
                ss = rs.scope_spans.add()
                ss.scope.name, ss.scope.version = "opentelemetry.instrumentation.grpc", "0.48b0"
                scopes[s.service] = ss.spans
            span = scopes[s.service].add(
                trace_id=trace_id,
                span_id=s.span_id,
                parent_span_id=s.parent,
                name=s.name,
                kind=s.kind,
                start_time_unix_nano=unique(s.start),
                end_time_unix_nano=unique(max(s.end, s.start + 1000)),
            )
            _set(span.attributes, s.attributes)
            if s.error:
                span.status.code, span.status.message = 2, s.error
            if s.exception:
                event = span.events.add(time_unix_nano=unique(s.end - 1000), name="exception")
                _set(
                    event.attributes, {"exception.type": s.exception[0], "exception.message": s.exception[1]}
                )
    data = req.SerializeToString()
    spans_ = [s for t in traces for s in t]
    children: dict[bytes, int] = {}
    for s in spans_:
        children[s.parent] = children.get(s.parent, 0) + 1
    located = _locate(
        data,
        unique.order,
        trace_ids,
        [len(t) for t in traces],
        [],
        [s.span_id for s in spans_],
        [1 + children.get(s.span_id, 0) for s in spans_],
    )
    return Template(np.frombuffer(data, np.uint8), sum(map(len, traces)), traces=len(traces), **located)


# Log lines per service; {id} is an id of ID_LENGTH characters that changes in every copy, {hex} the same
# in hexadecimal; the other fields are fixed per template.
LOG_LINES: dict[str, list[tuple[int, str]]] = {
    "frontend": [
        (9, "GET /product/{n} 200 in {ms} ms request_id={id}"),
        (9, "POST /cart 200 in {ms} ms request_id={id} session={hex}"),
        (13, "slow response GET /search?q=shoes {ms} ms request_id={id}"),
        (17, "POST /checkout 500 in {ms} ms request_id={id}: downstream call failed"),
    ],
    "checkout": [
        (9, "order {hex} placed: {k} items, total {amount} USD, request_id={id}"),
        (13, "retrying PaymentService/Charge for order {hex} attempt={k} after connection reset"),
        (17, "order {hex} failed: payment declined (request_id={id})"),
    ],
    "payment": [
        (9, "charged card ending {n4} amount={amount} currency=USD transaction={id}"),
        (17, "card ending {n4} declined: do not honor, transaction={id}"),
    ],
    "cart": [(9, "cart {hex} updated: {k} items"), (5, "cache hit cart:{hex} ttl={ms}s")],
    "catalog": [(9, "product {n} served from cache, request_id={id}"), (5, "query products took {ms} ms")],
    "auth": [(9, "token validated for user {hex} session={id}"), (13, "expired token for session {id}")],
    "shipping": [(9, "shipment {id} created for order {hex} via carrier DHL")],
    "search": [(9, 'query "running shoes" returned {k} hits in {ms} ms request_id={id}')],
    "accounting": [(9, "ledger entry {id} written for order {hex}")],
    "currency": [(9, "converted {amount} EUR to USD at rate 1.0{n4}")],
}
SEVERITY_TEXT = {5: "DEBUG", 9: "INFO", 13: "WARN", 17: "ERROR"}


def log_template(rng: np.random.Generator, records: int, spread_ns: int) -> Template:
    """``records`` log lines of the shop's services within ``spread_ns``, 70 % inside a trace."""
    services = list(LOG_LINES)
    unique = _UniqueTimes(rng)
    req = ExportLogsServiceRequest()
    scopes: dict[str, Any] = {}
    trace_ids: list[bytes] = []
    ids: list[bytes] = []
    hex_flags: list[bool] = []

    def placeholder(hexadecimal: bool) -> str:
        while True:
            text = (
                rng.bytes(ID_LENGTH // 2).hex()
                if hexadecimal
                else "".join(chr(c) for c in rng.choice(B62, ID_LENGTH))
            )
            if text.encode() not in ids:
                ids.append(text.encode())
                hex_flags.append(hexadecimal)
                return text

    for _ in range(records):
        service = services[int(rng.integers(len(services)))]
        if service not in scopes:
            rl = _resource(req.resource_logs, service, int(rng.integers(100)))
            sl = rl.scope_logs.add()
            sl.scope.name = f"shop.{service}"
            scopes[service] = sl.log_records
        severity, line = LOG_LINES[service][int(rng.integers(len(LOG_LINES[service])))]
        body = line.format(
            n=rng.integers(1000, 99999),
            n4=rng.integers(1000, 9999),
            ms=rng.integers(1, 900),
            k=rng.integers(1, 9),
            amount=f"{rng.random() * 500:.2f}",
            id=placeholder(False) if "{id}" in line else "",
            hex=placeholder(True) if "{hex}" in line else "",
        )
        t = unique(int(rng.integers(0, spread_ns)))
        record = scopes[service].add(
            time_unix_nano=t,
            observed_time_unix_nano=unique(t - TEMPLATE_BASE + int(rng.integers(1000, 50_000_000))),
            severity_number=severity,
            severity_text=SEVERITY_TEXT[severity],
        )
        record.body.string_value = body
        if rng.random() < 0.7:
            trace_ids.append(rng.bytes(16))
            record.trace_id, record.span_id = trace_ids[-1], rng.bytes(8)
            record.flags = 1
        _set(record.attributes, {"logger.name": f"shop.{service}", "code.lineno": int(rng.integers(10, 900))})
    data = req.SerializeToString()
    located = _locate(data, unique.order, trace_ids, [1] * len(trace_ids), ids)
    return Template(
        np.frombuffer(data, np.uint8), records, traces=len(trace_ids), id_hex=np.array(hex_flags), **located
    )


def copies(template: Template, bases: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``len(bases)`` copies of a template's payload (rows of a uint8 matrix), copy i moved to start at
    ``bases[i]``, with new trace ids, span ids and body ids; also returns the trace ids (copy, trace,
    16 bytes)."""
    n = len(bases)
    out = np.tile(template.payload, (n, 1))
    moved = template.times.astype(np.int64)[None, :] - TEMPLATE_BASE + bases.astype(np.int64)[:, None]
    out[:, template.time_offsets[:, None] + np.arange(8)] = (
        moved.astype("<u8").view(np.uint8).reshape(n, -1, 8)
    )
    trace_ids = rng.integers(0, 256, size=(n, template.traces, 16), dtype=np.uint8)
    if len(template.trace_offsets):
        out[:, template.trace_offsets[:, None] + np.arange(16)] = trace_ids[:, template.trace_index, :]
    if len(template.span_offsets):
        span_ids = rng.integers(0, 256, size=(n, template.spans, 8), dtype=np.uint8)
        out[:, template.span_offsets[:, None] + np.arange(8)] = span_ids[:, template.span_index, :]
    if len(template.id_offsets):
        chars = rng.integers(0, len(B62), size=(n, len(template.id_offsets), ID_LENGTH))
        chars[:, template.id_hex, :] %= 16
        out[:, template.id_offsets[:, None] + np.arange(ID_LENGTH)] = B62[chars]
    return out, trace_ids


# --- loading ---------------------------------------------------------------------------------------------


@dataclass
class Loaded:
    rows: int = 0
    seconds: float = 0.0
    segment_bytes: int = 0
    trace_ids: list[str] = field(default_factory=list)


def load(
    backend: Any,
    signal: Any,
    templates: list[Template],
    total: int,
    tenant_id: str,
    start_ns: int,
    end_ns: int,
    directory: Path,
    rng: np.random.Generator,
    per_segment: int,
    spread_ns: int,
    rare: dict[str, int] | None = None,
    keep_trace_ids: int = 0,
    log: Callable[[str], object] = print,
) -> Loaded:
    """Insert copies of the templates until ``total`` records, in time order over [start_ns, end_ns).

    Segments are generated in a thread while the previous one is inserted. ``rare`` maps tokens to how many
    records get them (in place of a body id); ``keep_trace_ids`` trace ids are kept for lookups.
    """
    from ollystack.clickhouse.otlp import frame

    result = Loaded()
    if total <= 0:
        return result
    per_copy = sum(t.records for t in templates) / len(templates)
    n_copies = math.ceil(total / per_copy)
    step = (end_ns - start_ns - spread_ns) / n_copies
    bases = start_ns + (np.arange(n_copies) * step).astype(np.int64)
    rare_at: dict[int, list[str]] = {}
    for token, count in (rare or {}).items():
        for copy_index in rng.choice(n_copies, size=count, replace=False):
            rare_at.setdefault(int(copy_index), []).append(token)
    keep = set(rng.choice(n_copies, size=min(keep_trace_ids, n_copies), replace=False).tolist())
    ready: queue.Queue[tuple[Path, int] | None] = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for first in range(0, n_copies, per_segment):
                chunk = range(first, min(first + per_segment, n_copies))
                frames, records = [], 0
                template = templates[(first // per_segment) % len(templates)]
                matrix, trace_ids = copies(template, bases[chunk.start : chunk.stop], rng)
                for row, copy_index in enumerate(chunk):
                    for k, token in enumerate(rare_at.get(copy_index, [])):
                        slots = np.flatnonzero(template.id_hex == token_is_hex(token))
                        at = int(template.id_offsets[slots[(copy_index + k) % len(slots)]])
                        matrix[row, at : at + ID_LENGTH] = np.frombuffer(token.encode(), np.uint8)
                    if copy_index in keep and template.traces:
                        result.trace_ids.append(
                            trace_ids[row, int(rng.integers(template.traces))].tobytes().hex()
                        )
                    frames.append(frame(tenant_id, matrix[row].tobytes()))
                    records += template.records
                path = directory / f"{signal.value}-{first}.seg"
                path.write_bytes(b"".join(frames))
                ready.put((path, records))
        except BaseException as exc:  # reported by the consumer
            failure.append(exc)
        finally:
            ready.put(None)

    producer = threading.Thread(target=produce, daemon=True)
    started = time.perf_counter()
    producer.start()
    next_report = 0.0
    while (item := ready.get()) is not None:
        path, records = item
        result.segment_bytes += path.stat().st_size
        backend.insert_otlp_segment(signal, path, uuid.uuid4().hex)  # rows written count views' rows too
        result.rows += records
        path.unlink()
        elapsed = time.perf_counter() - started
        if elapsed >= next_report or result.rows >= total:
            log(
                f"  {signal.value}: {result.rows:>11,} / {total:,} rows  {elapsed:6.1f} s  "
                f"{result.rows / max(elapsed, 1e-9):>9,.0f} rows/s"
            )
            next_report = elapsed + 10
    producer.join()
    if failure:
        raise failure[0]
    result.seconds = time.perf_counter() - started
    return result


def token_is_hex(token: str) -> bool:
    return all(c in "0123456789abcdef" for c in token)


# --- timing the read helpers -----------------------------------------------------------------------------


@dataclass
class Timing:
    name: str
    description: str
    target_ms: float | None
    runs_ms: list[float] = field(default_factory=list)
    result_size: int = 0
    statements: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    explain: list[str] = field(default_factory=list)
    skipped: str = ""

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.runs_ms, q)) if self.runs_ms else math.nan

    def summary(self) -> dict[str, Any]:
        if self.skipped:
            return {"description": self.description, "skipped": self.skipped}
        return {
            "description": self.description,
            "target_ms": self.target_ms,
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "min_ms": round(min(self.runs_ms), 2),
            "max_ms": round(max(self.runs_ms), 2),
            "first_run_ms": round(self.runs_ms[0], 2),
            "runs": len(self.runs_ms),
            "met": self.target_ms is None or self.percentile(95) < self.target_ms,
            "result_size": self.result_size,
            "explain": self.explain,
        }


def _recording(inner: Any) -> Any:
    """The backend, recording the statements a helper sends (to explain them afterwards)."""
    from ollystack.clickhouse import Backend

    class Recording(Backend):
        def __init__(self) -> None:
            self.statements: list[tuple[str, dict[str, Any]]] = []

        def query(self, sql: str, params: Any = None, settings: Any = None) -> Any:
            self.statements.append((sql, dict(params or {})))
            return inner.query(sql, params, settings)

        def command(self, sql: str, params: Any = None, settings: Any = None) -> None:
            self.statements.append((sql, dict(params or {})))
            inner.command(sql, params, settings)

    return Recording()


def _size(result: Any) -> int:
    records = getattr(result, "records", None)
    if records is not None:
        return len(records)
    edges = getattr(result, "edges", None)
    if edges is not None:
        return len(edges)
    try:
        return len(result)
    except TypeError:
        return 1


def measure(backend: Any, plan: list[tuple[Timing, Callable[[int], Any]]], runs: int) -> None:
    """Per query one untimed call (recording its statements and result size), then ``runs`` rounds that
    time every query once each, so that load from elsewhere on the machine spreads over all of them."""
    from ollystack.clickhouse import set_backend

    for timing, call in plan:
        recording = _recording(backend)
        set_backend(recording)
        try:
            timing.result_size = _size(call(runs))
        finally:
            set_backend(backend)
        timing.statements = recording.statements
    for i in range(runs):
        for timing, call in plan:
            t0 = time.perf_counter()
            call(i)
            timing.runs_ms.append((time.perf_counter() - t0) * 1000)
    for timing, _call in plan:
        for sql, params in timing.statements:
            try:
                # the plan may quote binary literals (an unhexed trace id)
                explain = f"SELECT toValidUTF8(explain) FROM (EXPLAIN indexes = 1\n{sql})"
                timing.explain.append("\n".join(str(r[0]) for r in backend.query(explain, params).rows))
            except Exception as exc:
                timing.explain.append(f"EXPLAIN failed: {exc}")


def _optional(module: str, function: str) -> Callable[..., Any] | None:
    import importlib

    try:
        helper: Callable[..., Any] = getattr(importlib.import_module(module), function)
        return helper
    except (ImportError, AttributeError):
        return None


def run_queries(
    backend: Any, tenant_id: str, now_ns: int, trace_ids: list[str], tokens: dict[str, int], runs: int
) -> list[Timing]:
    from ollystack.telemetry import logs, services, traces

    # Run i ends i microseconds before the load ended: "the last hour" as of a moment later, as when a user
    # asks again. Identical statements would be answered from the engine's query condition cache (which
    # remembers the granules a filter rejected): a repeated rare-id search took 25 ms instead of 270 ms.
    def end(i: int) -> int:
        return now_ns - 1000 * i

    def log_search(token: str) -> Callable[[int], Any]:
        return lambda i: logs.search_logs(
            tenant_id, logs.LogQuery(end(i) - DAY, end(i), text=token, limit=100)
        )

    def last_hour(helper: Callable[..., Any]) -> Callable[[int], Any]:
        return lambda i: helper(tenant_id, end(i) - HOUR, end(i))

    # (name, description, target, call of run i)
    plan: list[tuple[str, str, float | None, Callable[[int], Any] | None]] = [
        ("red", "RED of every service, last hour", TARGETS_MS["red"], last_hour(services.service_red)),
        (
            "trace",
            "one trace by id (a different one each run)",
            TARGETS_MS["trace"],
            lambda i: traces.get_trace(tenant_id, trace_ids[i % len(trace_ids)]),
        ),
    ]
    for n, (token, count) in enumerate(tokens.items()):
        kind = "hexadecimal id" if token_is_hex(token) else "id"
        plan.append(
            (
                "log_search" if n == 0 else f"log_search_{n}",
                f"logs containing a rare {kind} ({count} records), last 24 h",
                TARGETS_MS["log_search"],
                log_search(token),
            )
        )
    for name, module, function, description, target in (
        ("topology", "topology", "service_topology", "service topology, last hour", TARGETS_MS["topology"]),
        ("errors", "errors", "list_errors", "error groups, last hour", None),
        ("log_volume", "log_volume", "log_volume", "log volume per minute, last hour", None),
    ):
        helper = _optional(f"ollystack.telemetry.{module}", function)
        plan.append((name, description, target, last_hour(helper) if helper else None))

    timings, timed = [], []
    for name, description, target, call in plan:
        timing = Timing(name, description, target)
        if call is None:
            timing.skipped = "the read helper does not exist yet"
        else:
            timed.append((timing, call))
        timings.append(timing)
    measure(backend, timed, runs)
    for (token, count), timing in zip(tokens.items(), timings[2:], strict=False):
        if timing.result_size != count:
            raise SystemExit(f"log search for {token!r} found {timing.result_size} records, expected {count}")
    return timings


# --- the same questions through the REST API -------------------------------------------------------------


def run_api(
    backend: Any, tenant_id: str, now_ns: int, trace_ids: list[str], tokens: dict[str, int], runs: int
) -> list[Timing]:
    """The main REST endpoints on the same data, through Django's full request path (authentication with
    an API key, role check, parameter validation, query cache, JSON rendering) but no network. Each run
    asks for a range ending a millisecond earlier, so every timed request misses the cache; one row times
    a repeated request, answered from it."""
    from django.core.management import call_command
    from django.test import Client

    from tenants import logic
    from tenants.models import Tenant

    call_command("migrate", verbosity=0)
    Tenant.objects.create(id=tenant_id, name="bench")
    key = logic.issue_api_key(tenant_id, "bench").raw
    client = Client(SERVER_NAME="localhost", HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {key}")
    service = str(
        backend.query(
            "SELECT service_name FROM spans WHERE tenant_id = {t:String} GROUP BY service_name "
            "ORDER BY count() DESC LIMIT 1",
            {"t": tenant_id},
        ).rows[0][0]
    )

    def get(path: str, hours: float = 1) -> Callable[[int], Any]:
        def call(i: int) -> Any:
            end = (now_ns - i * 1_000_000) / 1e9
            sep = "&" if "?" in path else "?"
            response = client.get(f"{path}{sep}start={end - hours * 3600:.3f}&end={end:.3f}")
            if response.status_code != 200:
                raise SystemExit(f"GET {path}: {response.status_code} {response.content[:300]!r}")
            return response.json()

        return call

    def trace(i: int) -> Any:
        response = client.get(f"/api/v1/traces/{trace_ids[i % len(trace_ids)]}")
        if response.status_code != 200:
            raise SystemExit(f"GET /api/v1/traces/<id>: {response.status_code} {response.content[:300]!r}")
        return response.json()["spans"]

    cached = get("/api/v1/services")
    plan: list[tuple[Timing, Callable[[int], Any]]] = [
        (Timing("services", "GET /api/v1/services (RED), last hour", None), get("/api/v1/services")),
        (
            Timing("operations", "GET /api/v1/services/<s>/operations, last hour", None),
            get(f"/api/v1/services/{service}/operations"),
        ),
        (Timing("trace", "GET /api/v1/traces/<id>", None), trace),
        (
            Timing("trace_search", "GET /api/v1/traces?service=…&min_duration=…, last hour", None),
            get(f"/api/v1/traces?service={service}&min_duration=100ms&limit=20"),
        ),
        (
            Timing("log_search", "GET /api/v1/logs?text=<rare id>, last 24 h", None),
            get(f"/api/v1/logs?text={next(iter(tokens))}", hours=24),
        ),
        (Timing("errors", "GET /api/v1/errors, last hour", None), get("/api/v1/errors")),
        (Timing("topology", "GET /api/v1/topology, last hour", None), get("/api/v1/topology")),
        (Timing("cached", "GET /api/v1/services, repeated (query cache hit)", None), lambda _i: cached(0)),
    ]
    measure(backend, plan, runs)
    return [timing for timing, _call in plan]


# --- the whole run ---------------------------------------------------------------------------------------


def _setup_django(var: Path) -> None:
    os.environ["OLLYSTACK_VAR_DIR"] = str(var)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ollystack.settings.embedded")
    import django

    django.setup()


def _wait_for_merges(backend: Any, limit_s: float, log: Callable[[str], object]) -> dict[str, int]:
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if backend.query("SELECT count() FROM system.merges").rows[0][0] == 0:
            break
        time.sleep(1)
    rows = backend.query(
        "SELECT table, count() FROM system.parts WHERE active AND database = currentDatabase() "
        "GROUP BY table ORDER BY table"
    ).rows
    parts = {str(t): int(c) for t, c in rows}
    log(f"  merges settled after {time.perf_counter() - started:.0f} s; active parts: {parts}")
    return parts


def run(args: argparse.Namespace, log: Callable[[str], object] = print) -> dict[str, Any]:
    var = Path(tempfile.mkdtemp(prefix="ollystack-bench-queries-"))
    try:
        return _run(args, var, log)
    finally:
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)
        else:
            log(f"data kept under {var}")


def _run(args: argparse.Namespace, var: Path, log: Callable[[str], object]) -> dict[str, Any]:
    _setup_django(var)
    from ollystack.clickhouse import EmbeddedBackend, Signal, set_backend
    from ollystack.clickhouse.migrate import apply_migrations

    backend = EmbeddedBackend(var / "clickhouse")
    set_backend(backend)
    apply_migrations(backend, log=lambda _msg: None)
    rng = np.random.default_rng(args.seed)
    tenant_id = str(uuid.uuid4())
    now_ns = time.time_ns()
    start_ns = now_ns - DAY
    segments = var / "segments"
    segments.mkdir()
    tokens = {"Zq7RareTok3nXy9K": 5, "c0ffee5eed1e5afe": 5}

    t0 = time.perf_counter()
    span_spread = int(DAY / max(1.0, args.spans / 1000))
    trace_templates = [trace_template(rng, 1000, span_spread) for _ in range(args.templates)]
    log_spread = int(DAY / max(1.0, args.logs / 1000))
    log_templates = [log_template(rng, 1000, log_spread) for _ in range(args.templates)]
    log(
        f"templates built in {time.perf_counter() - t0:.1f} s: "
        f"{np.mean([t.payload.size for t in trace_templates]) / 1024:.0f} KiB per ~1 000 spans, "
        f"{np.mean([t.payload.size for t in log_templates]) / 1024:.0f} KiB per 1 000 log records"
    )
    log(f"loading {args.spans:,} spans and {args.logs:,} log records over 24 h into {var}")
    spans = load(
        backend,
        Signal.TRACES,
        trace_templates,
        args.spans,
        tenant_id,
        start_ns,
        now_ns,
        segments,
        rng,
        args.segment_requests,
        span_spread,
        keep_trace_ids=args.runs,
        log=log,
    )
    logs_loaded = load(
        backend,
        Signal.LOGS,
        log_templates,
        args.logs,
        tenant_id,
        start_ns,
        now_ns,
        segments,
        rng,
        args.segment_requests,
        log_spread,
        rare=tokens,
        log=log,
    )
    parts = _wait_for_merges(backend, args.merge_wait, log)
    stored = {
        table: int(
            backend.query(
                f"SELECT count() FROM {table} WHERE tenant_id = {{tenant:String}}", {"tenant": tenant_id}
            ).rows[0][0]
        )
        for table in ("spans", "logs")
    }
    if stored != {"spans": spans.rows, "logs": logs_loaded.rows}:
        raise SystemExit(f"stored {stored}, sent {spans.rows} spans and {logs_loaded.rows} log records")
    disk = {
        str(t): int(b)
        for t, b in backend.query(
            "SELECT table, sum(bytes_on_disk) FROM system.parts "
            "WHERE active AND database = currentDatabase() GROUP BY table"
        ).rows
    }
    log(f"timing {args.runs} runs per query")
    timings = run_queries(backend, tenant_id, now_ns, spans.trace_ids, tokens, args.runs)
    log(f"timing {args.runs} runs per REST endpoint")
    api_timings = run_api(backend, tenant_id, now_ns, spans.trace_ids, tokens, args.runs)
    load_average = os.getloadavg()
    backend.close()
    return {
        "load": {
            "spans": spans.rows,
            "spans_seconds": round(spans.seconds, 1),
            "spans_per_second": round(spans.rows / spans.seconds),
            "span_segment_bytes": spans.segment_bytes,
            "log_records": logs_loaded.rows,
            "logs_seconds": round(logs_loaded.seconds, 1),
            "logs_per_second": round(logs_loaded.rows / logs_loaded.seconds),
            "log_segment_bytes": logs_loaded.segment_bytes,
            "active_parts": parts,
            "bytes_on_disk": disk,
        },
        "queries": {t.name: t.summary() for t in timings},
        "api": {t.name: t.summary() for t in api_timings},
        "config": {
            "runs": args.runs,
            "segment_requests": args.segment_requests,
            "cpus": os.cpu_count(),
            # other work on the machine shows in the latencies
            "load_average_while_timing": [round(x, 2) for x in load_average],
        },
    }


def print_table(results: dict[str, Any], out: Path) -> None:
    load_ = results["load"]
    print(
        f"loaded {load_['spans']:,} spans in {load_['spans_seconds']} s ({load_['spans_per_second']:,}/s), "
        f"{load_['log_records']:,} log records in {load_['logs_seconds']} s ({load_['logs_per_second']:,}/s)"
    )
    for section, title in (("queries", "query"), ("api", "REST endpoint")):
        print(f"{title:<58}{'p50 ms':>9}{'p95 ms':>9}{'target':>9}  ")
        for q in results.get(section, {}).values():
            if "skipped" in q:
                print(f"{q['description']:<58}{'':>9}{'':>9}{'':>9}  skipped: {q['skipped']}")
                continue
            target = f"< {q['target_ms']:g}" if q["target_ms"] is not None else "-"
            verdict = "" if q["target_ms"] is None else ("ok" if q["met"] else "MISSED")
            print(f"{q['description']:<58}{q['p50_ms']:>9.1f}{q['p95_ms']:>9.1f}{target:>9}  {verdict}")
    config = results["config"]
    load = " ".join(str(x) for x in config["load_average_while_timing"])
    print(f"load average after timing: {load} on {config['cpus']} cores   (written to {out})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--logs", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per query")
    parser.add_argument("--templates", type=int, default=8, help="distinct requests per signal")
    parser.add_argument("--segment-requests", type=int, default=64, help="1 000-record requests per segment")
    parser.add_argument("--merge-wait", type=float, default=300, help="at most this long for merges, seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--out", default=str(REPO / "var" / "bench" / "queries.json"))
    args = parser.parse_args(argv)
    results = run(args, log=lambda msg: print(msg, flush=True))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    # the REST figures also go to api.json, next to the PromQL ones of bench.promql
    api_json = out.with_name("api.json")
    api = json.loads(api_json.read_text()) if api_json.exists() else {}
    api["rest"] = {"endpoints": results["api"], "spans": results["load"]["spans"], **results["config"]}
    api_json.write_text(json.dumps(api, indent=2) + "\n")
    print_table(results, out)


if __name__ == "__main__":
    main()
