"""The browser UI on 10 M spans: `python -m bench.ui`.

What a user waits for: every page of the UI opened in Debian's Chromium (Playwright) against a
``manage.py serve`` whose tenant holds 10 M spans and 2 M log records of the last 6 hours (20 services
calling each other, about 3 % of requests failing, one trace of 5 000 spans), plus two small tenants.

Data: generated like ``bench.queries`` does (realistic OTLP requests copied with numpy, inserted through
``Backend.insert_otlp_segment`` so that every materialized view fills), with more services. It is kept
under var/bench/ui-data/ with a marker of its parameters: a re-run reuses it while its newest hour is
still recent (``--max-age``, as pages ask for "the last hour"); an older one is topped up with the
minutes since, at the same rate (reloaded when older than the hours it covers).

Each page is opened ``--runs`` times per range (1 h and 6 h), one after the other in one browser tab as a
user moving through the UI does, waiting for the network to go idle. For the HTML document and for every
same-origin fetch the page made, the server's time is the browser's ``responseStart - requestStart``
(Playwright's request timing). The first load of a page and range is
reported apart from the repeats, which the query cache may answer; a second ``serve`` start with
``OLLYSTACK_QUERY_CACHE_SECONDS=0`` repeats everything without it (``--no-uncached`` skips that). The trace
page of the 5 000-span trace is timed from navigation start to its ``olly:trace-rendered`` performance
mark. A page that fails (HTTP error, no network idle, console errors) is reported, not fatal.

Targets: every response under 300 ms, the big trace drawn within 2 s. Output: a table on stdout, each
response over target named with its path and parameters, and var/bench/ui.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import queries
from tests.e2e.conftest import Server, free_port
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "var" / "bench" / "ui-data"
NS = 1_000_000_000
HOUR = 3600 * NS
RESPONSE_TARGET_MS = 300.0
RENDER_TARGET_MS = 2000.0
DATA_VERSION = 2  # bump when the generated data changes shape
TENANT = "shop"
SMALL_TENANTS = ("acme", "globex")
USER = "bench"
PASSWORD = secrets.token_urlsafe(16)  # set again on every run
RANGES = ("1h", "6h")
RENDER_MARK = "olly:trace-rendered"


# --- the data: bench.queries' shop with seven more services ---------------------------------------------

EXTRA_GRAPH: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("frontend", "GET /account"): [
        ("auth", "AuthService/ValidateToken"),
        ("user-profile", "ProfileService/GetProfile"),
        ("loyalty", "LoyaltyService/GetPoints"),
    ],
    ("frontend", "GET /product/{id}/reviews"): [
        ("auth", "AuthService/ValidateToken"),
        ("reviews", "ReviewService/ListReviews"),
    ],
    ("checkout", "CheckoutService/PlaceOrder"): [
        ("cart", "CartService/GetCart"),
        ("catalog", "CatalogService/GetProduct"),
        ("inventory", "InventoryService/Reserve"),
        ("currency", "CurrencyService/Convert"),
        ("fraud", "FraudService/Score"),
        ("payment", "PaymentService/Charge"),
        ("shipping", "ShippingService/ShipOrder"),
        ("email", "EmailService/SendOrderConfirmation"),
        ("cart", "CartService/EmptyCart"),
        ("kafka", "orders publish"),
    ],
    ("catalog", "CatalogService/GetProduct"): [
        ("postgresql", "SELECT * FROM products WHERE id = $1"),
        ("pricing", "PricingService/Quote"),
    ],
    ("email", "EmailService/SendOrderConfirmation"): [("notification", "NotificationService/Push")],
    ("user-profile", "ProfileService/GetProfile"): [
        ("postgresql", "SELECT * FROM profiles WHERE user_id = $1")
    ],
    ("loyalty", "LoyaltyService/GetPoints"): [("redis", "GET points:?")],
    ("reviews", "ReviewService/ListReviews"): [
        ("postgresql", "SELECT * FROM reviews WHERE product_id = $1 ORDER BY created_at DESC LIMIT 20"),
        ("user-profile", "ProfileService/GetProfile"),
    ],
    ("inventory", "InventoryService/Reserve"): [
        ("postgresql", "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2")
    ],
    ("fraud", "FraudService/Score"): [],
    ("notification", "NotificationService/Push"): [],
    ("pricing", "PricingService/Quote"): [("redis", "GET price:?")],
    ("importer", "ImporterService/ImportCatalog"): [],  # the root of the one big trace
}
ROOTS = [*queries.ROOTS, ("GET /account", 8), ("GET /product/{id}/reviews", 7)]
# failures: 1-3 % of the frontend's requests end in an error (the shop of bench.queries fails less often)
EXTRA_FAILURES = {
    ("payment", "PaymentService/Charge"): (
        0.08,
        "CardDeclinedError",
        "card ending {n} declined: do not honor",
    ),
    ("currency", "CurrencyService/Convert"): (0.02, "TimeoutError", "rate provider timed out after 2000 ms"),
    ("ad", "AdService/GetAds"): (0.03, "UnavailableError", "ad index is rebuilding, try again"),
    ("auth", "AuthService/ValidateToken"): (0.01, "UnavailableError", "session store connection refused"),
    ("inventory", "InventoryService/Reserve"): (0.04, "OutOfStockError", "sku {n} is out of stock"),
    ("fraud", "FraudService/Score"): (0.02, "DeadlineExceededError", "fraud model did not answer in 500 ms"),
    ("reviews", "ReviewService/ListReviews"): (0.05, "UnavailableError", "review store is read-only"),
}
EXTRA_LOG_LINES: dict[str, list[tuple[int, str]]] = {
    "inventory": [
        (9, "reserved {k} of sku {n} for order {hex}"),
        (17, "sku {n} out of stock for order {hex}, request_id={id}"),
    ],
    "fraud": [(9, "order {hex} scored {k}0 in {ms} ms"), (13, "fraud model slow: {ms} ms request_id={id}")],
    "reviews": [(9, "listed {k} reviews of product {n} request_id={id}")],
    "user-profile": [(9, "profile of user {hex} served in {ms} ms")],
    "loyalty": [(9, "user {hex} has {n} points")],
    "notification": [(9, "push notification {id} sent for order {hex}")],
    "pricing": [(9, "quote for product {n}: {amount} USD (cache ttl {ms}s)")],
}


@contextlib.contextmanager
def _shop() -> Iterator[None]:
    """bench.queries' generators, seeing the larger shop while the templates are built."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(queries.GRAPH, EXTRA_GRAPH))
        stack.enter_context(_patched(queries.FAILURES, EXTRA_FAILURES))
        stack.enter_context(_patched(queries.LOG_LINES, EXTRA_LOG_LINES))
        saved_roots = queries.ROOTS
        queries.ROOTS = ROOTS
        try:
            yield
        finally:
            queries.ROOTS = saved_roots


@contextlib.contextmanager
def _patched(target: dict[Any, Any], extra: dict[Any, Any]) -> Iterator[None]:
    saved = dict(target)
    target.update(extra)
    try:
        yield
    finally:
        target.clear()
        target.update(saved)


def big_trace(rng: np.random.Generator, start_ns: int, spans: int) -> tuple[bytes, bytes]:
    """One catalog import of exactly ``spans`` spans (product look-ups, stock and price checks one after
    another under one root): the serialized request and the trace id."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    with _shop():
        builder = queries._TraceBuilder(rng)
        root = builder.serve("importer", "ImporterService/ImportCatalog", b"", 0)
        t = root.start + builder._ms(2)
        calls = [
            ("catalog", "CatalogService/GetProduct"),  # client, server, database, pricing: 6 spans
            ("inventory", "InventoryService/Reserve"),  # client, server, database: 3 spans
            ("postgresql", "INSERT INTO imported (sku, payload) VALUES ($1, $2)"),  # 1 span
        ]
        step = 0
        while len(builder.spans) < spans:
            callee, op = calls[step % 2] if spans - len(builder.spans) >= 6 else calls[2]
            t = builder.call(root, callee, op, t).end + builder._ms(0.2)
            step += 1
        root.end = t + builder._ms(1)
    trace_id = rng.bytes(16)
    req = ExportTraceServiceRequest()
    scopes: dict[str, Any] = {}
    for s in builder.spans:
        if s.service not in scopes:
            rs = queries._resource(req.resource_spans, s.service, int(rng.integers(100)))
            ss = rs.scope_spans.add()
            ss.scope.name, ss.scope.version = "opentelemetry.instrumentation.grpc", "0.48b0"
            scopes[s.service] = ss.spans
        span = scopes[s.service].add(
            trace_id=trace_id,
            span_id=s.span_id,
            parent_span_id=s.parent,
            name=s.name,
            kind=s.kind,
            start_time_unix_nano=start_ns + s.start,
            end_time_unix_nano=start_ns + max(s.end, s.start + 1000),
        )
        queries._set(span.attributes, s.attributes)
        if s.error:
            span.status.code, span.status.message = 2, s.error
    return req.SerializeToString(), trace_id


def data_params(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "version": DATA_VERSION,
        "spans": args.spans,
        "logs": args.logs,
        "small_spans": args.small_spans,
        "small_logs": args.small_logs,
        "hours": args.hours,
        "big_trace_spans": args.big_trace_spans,
        "seed": args.seed,
    }


def load_data(spec: dict[str, Any]) -> None:
    """Fill the engine of ``spec["var"]`` (no server may hold it) and write the marker; runs in its own
    process, as the embedded engine binds a process to one data directory.

    With ``spec["since"]`` (the end of the stored data, Unix seconds) only the time since is added, at the
    same rate: the last ``hours`` hold as much as a fresh load, without loading it all again."""
    var = Path(spec["var"])
    params: dict[str, Any] = spec["params"]
    tenants: dict[str, str] = spec["tenants"]  # name -> id
    since: float | None = spec.get("since")
    queries._setup_django(var)
    from ollystack.clickhouse import EmbeddedBackend, Signal, set_backend
    from ollystack.clickhouse.migrate import apply_migrations
    from ollystack.clickhouse.otlp import frame

    def log(msg: str) -> None:
        print(msg, flush=True)

    backend = EmbeddedBackend(var / "clickhouse")
    set_backend(backend)
    apply_migrations(backend, log=lambda _msg: None)
    now_ns = time.time_ns()
    span_ns = params["hours"] * HOUR
    start_ns = int(since * NS) if since else now_ns - span_ns
    share = (now_ns - start_ns) / span_ns
    # a top-up draws other ids than the first load
    rng = np.random.default_rng([params["seed"], int(since or 0)])
    segments = var.parent / "segments"
    shutil.rmtree(segments, ignore_errors=True)
    segments.mkdir(parents=True)

    t0 = time.perf_counter()
    with _shop():
        span_spread = int(span_ns / max(1.0, params["spans"] / 1000))
        trace_templates = [queries.trace_template(rng, 1000, span_spread) for _ in range(8)]
        log_spread = int(span_ns / max(1.0, params["logs"] / 1000))
        log_templates = [queries.log_template(rng, 1000, log_spread) for _ in range(8)]
    log(f"templates built in {time.perf_counter() - t0:.1f} s")

    loaded: dict[str, dict[str, float]] = {}
    for name, tenant_id in tenants.items():
        big = name == TENANT
        spans_total = round((params["spans"] if big else params["small_spans"]) * share)
        logs_total = round((params["logs"] if big else params["small_logs"]) * share)
        hours = share * params["hours"]
        log(f"{name}: {spans_total:,} spans and {logs_total:,} log records over {hours:.2f} h")
        spans = queries.load(
            backend,
            Signal.TRACES,
            trace_templates,
            spans_total,
            tenant_id,
            start_ns,
            now_ns,
            segments,
            rng,
            64,
            span_spread,
            log=log,
        )
        logs = queries.load(
            backend,
            Signal.LOGS,
            log_templates,
            logs_total,
            tenant_id,
            start_ns,
            now_ns,
            segments,
            rng,
            64,
            log_spread,
            log=log,
        )
        loaded[name] = {
            "spans": spans.rows,
            "spans_seconds": round(spans.seconds, 1),
            "logs": logs.rows,
            "logs_seconds": round(logs.seconds, 1),
        }

    marker: dict[str, Any] = dict(spec.get("marker") or {})
    if not since:
        payload, trace_id = big_trace(rng, now_ns - 10 * 60 * NS, params["big_trace_spans"])
        path = segments / "big-trace.seg"
        path.write_bytes(frame(tenants[TENANT], payload))
        backend.insert_otlp_segment(Signal.TRACES, path, uuid.uuid4().hex)
        path.unlink()
        marker.update(params=params, tenants=tenants, loaded_at=now_ns / NS, big_trace_id=trace_id.hex())
    queries._wait_for_merges(backend, 300, log)

    tenant = {"t": tenants[TENANT], "since": (now_ns - span_ns) / NS}
    big_spans = backend.query(
        "SELECT count() FROM spans WHERE tenant_id = {t:String} AND trace_id = unhex({id:String})",
        {**tenant, "id": marker["big_trace_id"]},
    ).rows[0][0]
    if big_spans != params["big_trace_spans"]:
        raise SystemExit(f"the big trace has {big_spans} spans stored, expected {params['big_trace_spans']}")
    # what the 6 h range shows
    busiest, spans_stored, errors = backend.query(
        "SELECT argMax(service_name, n), sum(n), sum(e) FROM (SELECT service_name, count() AS n, "
        "countIf(status_code = 2) AS e FROM spans WHERE tenant_id = {t:String} "
        "AND timestamp >= toDateTime64({since:Float64}, 9) GROUP BY service_name)",
        tenant,
    ).rows[0]
    services, failed_requests = backend.query(
        "SELECT uniqExact(service_name), avgIf(status_code = 2, parent_span_id = '') FROM spans "
        "WHERE tenant_id = {t:String} AND timestamp >= toDateTime64({since:Float64}, 9)",
        tenant,
    ).rows[0]
    backend.close()
    seconds = round(time.perf_counter() - t0)
    if since:
        marker.setdefault("top_ups", []).append({"at": now_ns / NS, "load": loaded, "seconds": seconds})
    else:
        marker.update(load=loaded, load_seconds=seconds)
    marker.update(
        data_end=now_ns / NS,
        services=int(services),
        busiest_service=str(busiest),
        spans_stored=int(spans_stored),
        error_span_share=round(int(errors) / max(1, int(spans_stored)), 4),
        failed_request_share=round(float(failed_requests), 4),  # root spans with an error
        big_trace_spans=int(big_spans),
    )
    (var.parent / "marker.json").write_text(json.dumps(marker, indent=2) + "\n")
    shutil.rmtree(segments, ignore_errors=True)


class BenchServer(Server):
    """``serve`` on the data directory, with extra environment (the query cache switched off)."""

    extra_env: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **getattr(self, "extra_env", {})}


def make_server(var: Path, **extra_env: str) -> BenchServer:
    server = BenchServer(
        var_dir=var,
        ports={"http": free_port(), "grpc": free_port(), "otlp_http": free_port(), "metrics": free_port()},
    )
    server.extra_env = extra_env
    return server


def prepare_data(args: argparse.Namespace, log: Callable[[str], object]) -> dict[str, Any]:
    """The marker of a dataset under ``args.data`` that fits ``args``, loading or topping it up when
    needed."""
    data: Path = args.data
    var = data / "var"
    marker_path = data / "marker.json"
    params = data_params(args)
    spec: dict[str, Any] = {"var": str(var), "params": params}
    if marker_path.exists() and not args.reload:
        marker: dict[str, Any] = json.loads(marker_path.read_text())
        age_min = (time.time() - marker["data_end"]) / 60
        if marker["params"] != params:
            log(f"reloading: the data in {data} was made with other parameters ({marker['params']})")
        elif age_min <= args.max_age:
            log(f"reusing the data in {data} (ends {age_min:.0f} min ago)")
            return marker
        elif age_min < params["hours"] * 60:
            log(f"topping up: the data ends {age_min:.0f} min ago (--max-age {args.max_age:g}), adding since")
            spec.update(tenants=marker["tenants"], since=marker["data_end"], marker=marker)
        else:
            log(f"reloading: the data ends {age_min:.0f} min ago, before the {params['hours']} h it covers")
    server = make_server(var)
    if "since" in spec:
        marker_path.unlink()  # until the top-up is complete: a failed one means loading again
    else:
        shutil.rmtree(data, ignore_errors=True)
        var.mkdir(parents=True)
        server.manage("migrate", "--verbosity", "0")
        spec["tenants"] = {
            name: json.loads(server.manage("tenant", "create", name, "--json").stdout)["tenant_id"]
            for name in (TENANT, *SMALL_TENANTS)
        }
        log(f"loading into {var}")
    code = "import json, sys; from bench.ui import load_data; load_data(json.loads(sys.argv[1]))"
    subprocess.run(  # noqa: S603
        [sys.executable, "-c", code, json.dumps(spec)], cwd=REPO, env=server.env, check=True
    )
    loaded: dict[str, Any] = json.loads(marker_path.read_text())
    return loaded


def create_user(server: Server) -> None:
    """The signed-in user: owner of the big tenant, viewer of the small ones (idempotent)."""
    roles = {TENANT: "owner", **dict.fromkeys(SMALL_TENANTS, "viewer")}
    script = f"""
import json
from django.contrib.auth import get_user_model
from tenants.logic import set_membership
user, _ = get_user_model().objects.get_or_create(username={USER!r})
user.set_password({PASSWORD!r})
user.save()
for tenant, role in json.loads({json.dumps(json.dumps(roles))}).items():
    set_membership(tenant, user, role)
"""
    server.manage("shell", "-c", script)


# --- the browser ------------------------------------------------------------------------------------------


@dataclass
class Response:
    url: str  # path and query
    kind: str  # document, fetch, xhr
    status: int
    server_ms: float


@dataclass
class Load:
    responses: list[Response] = field(default_factory=list)
    error: str = ""

    @property
    def slowest(self) -> Response | None:
        return max(self.responses, key=lambda r: r.server_ms, default=None)


def _relative(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def open_page(page: Any, base: str, path: str, timeout_ms: float) -> Load:
    """Go to ``path`` in the tab ``page``, wait for the network to go idle, and collect the server times."""
    from playwright.sync_api import Error as PlaywrightError

    started: list[Any] = []
    finished: list[Any] = []
    failed: list[Any] = []
    problems: list[str] = []
    listeners: dict[str, Callable[[Any], object]] = {  # Playwright wants Python functions, not methods
        "request": lambda r: started.append(r),
        "requestfinished": lambda r: finished.append(r),
        "requestfailed": lambda r: failed.append(r),
        "pageerror": lambda exc: problems.append(f"uncaught: {exc}"),
        "console": lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
    }
    for event, listener in listeners.items():
        page.on(event, listener)
    load = Load()
    try:
        document = page.goto(f"{base}{path}", wait_until="networkidle", timeout=timeout_ms)
        if document is None or document.status != 200:
            problems.insert(0, f"HTTP {document.status if document else '?'}")
        elif _relative(page.url).split("?")[0] != path.split("?")[0]:
            problems.insert(0, f"ended at {_relative(page.url)}")
    except PlaywrightError as exc:
        problems.insert(0, str(exc).splitlines()[0])
    for request in started:
        if request.url.startswith(base) and request not in finished:
            # a call still running when the page gave up is the one to name
            why = f"failed: {request.failure}" if request in failed else "unanswered"
            problems.append(f"{request.method} {_relative(request.url)} {why}")
    for request in finished:
        if not request.url.startswith(base) or request.resource_type not in ("document", "fetch", "xhr"):
            continue
        timing = request.timing
        if timing["requestStart"] < 0 or timing["responseStart"] < 0:
            continue
        response = request.response()
        load.responses.append(
            Response(
                _relative(request.url),
                request.resource_type,
                response.status if response else 0,
                round(timing["responseStart"] - timing["requestStart"], 1),
            )
        )
        if response and response.status >= 400:
            problems.append(f"HTTP {response.status} from {_relative(request.url)}")
    load.error = "; ".join(dict.fromkeys(problems))
    for event, listener in listeners.items():
        page.remove_listener(event, listener)
    return load


def time_render(page: Any, base: str, path: str, timeout_ms: float) -> tuple[float | None, str]:
    """Milliseconds from navigation start to the trace page's render mark, in the tab ``page``."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        page.goto(f"{base}{path}", wait_until="commit", timeout=timeout_ms)
        page.wait_for_function(
            f"performance.getEntriesByName({RENDER_MARK!r}).length > 0", timeout=timeout_ms
        )
        mark = page.evaluate(f"performance.getEntriesByName({RENDER_MARK!r})[0].startTime")
        return float(mark), ""
    except PlaywrightError as exc:
        return None, f"no {RENDER_MARK} mark: {str(exc).splitlines()[0]}"


def sign_in(context: Any, base: str) -> None:
    from playwright.sync_api import Error as PlaywrightError

    page = context.new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_login", USER)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    try:
        page.wait_for_url(lambda url: "/accounts/login" not in url)
    except PlaywrightError:
        raise SystemExit(f"sign-in as {USER} failed: still at {page.url}") from None
    page.close()


def pages(marker: dict[str, Any]) -> list[str]:
    return [
        "/services/",
        f"/services/{urllib.parse.quote(marker['busiest_service'])}/",
        "/traces/",
        f"/traces/{marker['big_trace_id']}/",
        "/logs/",
        "/dashboards/",
        "/service-map/",
        "/alerts/",
    ]


def _ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def summarize(path: str, range_: str, loads: list[Load]) -> dict[str, Any]:
    """First load and repeats apart: the slowest response of each, and every endpoint's times."""
    per_load = [(load.slowest, load) for load in loads]
    first, warm = per_load[:1], per_load[1:]

    def part(items: list[tuple[Response | None, Load]]) -> dict[str, Any]:
        slow = [s for s, _load in items if s is not None]
        worst = max(slow, key=lambda r: r.server_ms, default=None)
        return {
            "slowest_p50_ms": _ms([s.server_ms for s in slow], 50),
            "slowest_max_ms": worst.server_ms if worst else None,
            "slowest_url": worst.url if worst else None,
        }

    endpoints: dict[str, dict[str, list[float]]] = {}
    for i, load in enumerate(loads):
        for r in load.responses:
            entry = endpoints.setdefault(r.url.split("?")[0], {"first": [], "warm": []})
            entry["first" if i == 0 else "warm"].append(r.server_ms)
    over = [
        {"run": i, "url": r.url, "kind": r.kind, "status": r.status, "server_ms": r.server_ms}
        for i, load in enumerate(loads)
        for r in load.responses
        if r.server_ms >= RESPONSE_TARGET_MS
    ]
    return {
        "path": path,
        "range": range_,
        "runs": len(loads),
        "failed_runs": sum(1 for load in loads if load.error),
        "errors": list(dict.fromkeys(load.error for load in loads if load.error)),
        "requests_per_load": _ms([len(load.responses) for load in loads], 50),
        "first": part(first),
        "warm": part(warm),
        "endpoints": {
            name: {
                "first_max_ms": max(v["first"], default=None),
                "warm_p50_ms": _ms(v["warm"], 50),
                "warm_max_ms": max(v["warm"], default=None),
            }
            for name, v in endpoints.items()
        },
        "over_target": over,
        "met": not over and all(load.responses for load in loads),
    }


def measure_pass(
    server: BenchServer, marker: dict[str, Any], args: argparse.Namespace, log: Callable[[str], object]
) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    # other work on the machine shows in the latencies
    results: dict[str, Any] = {"pages": [], "trace_render": None, "load_average_before": _load_average()}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.set_default_timeout(args.timeout * 1000)
        sign_in(context, server.web)
        # one tab, as a user moving through the UI has: a new tab per load would start a renderer process
        # each time, about 1 s of CPU on the 2 cores the server shares
        tab = context.new_page()
        for path in pages(marker):
            for range_ in RANGES:
                url = f"{path}?tenant={TENANT}&range={range_}"
                loads = [open_page(tab, server.web, url, args.timeout * 1000) for _ in range(args.runs)]
                summary = summarize(path, range_, loads)
                results["pages"].append(summary)
                warm = summary["warm"]
                log(
                    f"  {path:<44} {range_:>3}  first {_fmt(summary['first']['slowest_max_ms'])} ms  "
                    f"warm p50 {_fmt(warm['slowest_p50_ms'])} max {_fmt(warm['slowest_max_ms'])} ms"
                    + (f"  ERROR {summary['errors'][0][:120]}" if summary["errors"] else "")
                )
        trace_path = f"/traces/{marker['big_trace_id']}/?tenant={TENANT}"
        marks: list[float] = []
        error = ""
        for _ in range(args.runs):
            mark, error = time_render(tab, server.web, trace_path, args.timeout * 1000)
            if mark is None:
                break  # the page does not set the mark: no use waiting for it again
            marks.append(mark)
        results["trace_render"] = {
            "path": trace_path,
            "spans": marker["big_trace_spans"],
            "runs": len(marks),
            "p50_ms": _ms(marks, 50),
            "max_ms": round(max(marks), 1) if marks else None,
            "error": error,
            "met": bool(marks) and max(marks) < RENDER_TARGET_MS,
        }
        log(
            f"  trace render ({marker['big_trace_spans']} spans): p50 {_fmt(_ms(marks, 50))} ms "
            f"max {_fmt(max(marks) if marks else None)} ms" + (f"  ERROR {error[:120]}" if error else "")
        )
        browser.close()
    return results


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0f}"


def run(args: argparse.Namespace, log: Callable[[str], object] = print) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: install Debian's chromium or set OLLYSTACK_TEST_CHROMIUM")
    marker = prepare_data(args, log)
    passes = (
        {"cached": {}}
        if args.no_uncached
        else {"cached": {}, "uncached": {"OLLYSTACK_QUERY_CACHE_SECONDS": "0"}}
    )
    results: dict[str, Any] = {"data": marker, "passes": {}}
    for name, env in passes.items():
        server = make_server(args.data / "var", **env)
        create_user(server)
        log(f"{name}: serve {'with the query cache' if name == 'cached' else 'without the query cache'}")
        server.start(timeout=180)
        try:
            results["passes"][name] = measure_pass(server, marker, args, log)
        finally:
            server.stop()
    results["config"] = {
        "runs": args.runs,
        "ranges": list(RANGES),
        "response_target_ms": RESPONSE_TARGET_MS,
        "render_target_ms": RENDER_TARGET_MS,
        "cpus": os.cpu_count(),
        "load_average_after": _load_average(),
    }
    return results


def over_target(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The responses over target grouped by pass, endpoint (path without parameters) and range."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for name, result in results["passes"].items():
        for p in result["pages"]:
            for o in p["over_target"]:
                endpoint = o["url"].split("?")[0]
                if endpoint.startswith("/traces/") or endpoint.startswith("/api/v1/traces/"):
                    endpoint = endpoint.replace(results["data"]["big_trace_id"], "<id>")
                group = groups.setdefault(
                    (name, endpoint, p["range"]),
                    {"pass": name, "endpoint": endpoint, "range": p["range"], "count": 0, "max_ms": 0.0},
                )
                group["count"] += 1
                group.setdefault("pages", [])
                if p["path"] not in group["pages"]:
                    group["pages"].append(p["path"])
                if o["server_ms"] > group["max_ms"]:
                    group.update(max_ms=o["server_ms"], slowest_url=o["url"])
    return sorted(groups.values(), key=lambda g: (g["pass"], -g["max_ms"]))


def print_table(results: dict[str, Any], out: Path) -> None:
    data = results["data"]
    print(
        f"\ndata: {data['spans_stored']:,} spans of tenant {TENANT} ({data['services']} services, "
        f"{data['failed_request_share']:.1%} of requests failed, {data['error_span_share']:.1%} of spans) "
        f"over {data['params']['hours']} h, "
        f"{data['params']['logs']:,} log records; small tenants {', '.join(SMALL_TENANTS)}; "
        f"loaded in {data['load_seconds']} s"
    )
    for name, result in results["passes"].items():
        print(
            f"\n{name}: server time of the slowest response per page load, ms "
            f"(target < {RESPONSE_TARGET_MS:g}; load average before: "
            f"{' '.join(str(x) for x in result['load_average_before'])})"
        )
        print(
            f"{'page':<46}{'range':>6}{'reqs':>6}{'first':>8}{'warm p50':>10}{'warm max':>10}"
            "  slowest request"
        )
        for p in result["pages"]:
            worst = (
                p["warm"]
                if (p["warm"]["slowest_max_ms"] or 0) > (p["first"]["slowest_max_ms"] or 0)
                else p["first"]
            )
            verdict = "ok" if p["met"] else "MISSED"
            if p["errors"]:
                verdict = f"FAILED: {p['errors'][0][:80]}"
            print(
                f"{p['path']:<46}{p['range']:>6}{_fmt(p['requests_per_load']):>6}"
                f"{_fmt(p['first']['slowest_max_ms']):>8}{_fmt(p['warm']['slowest_p50_ms']):>10}"
                f"{_fmt(p['warm']['slowest_max_ms']):>10}  {(worst['slowest_url'] or '-')[:70]}  {verdict}"
            )
        render = result["trace_render"]
        if render:
            verdict = (
                "ok"
                if render["met"]
                else ("FAILED: " + render["error"][:80] if render["error"] else "MISSED")
            )
            print(
                f"trace render, {render['spans']} spans: p50 {_fmt(render['p50_ms'])} ms, "
                f"max {_fmt(render['max_ms'])} ms (target < {RENDER_TARGET_MS:g})  {verdict}"
            )
    over = over_target(results)
    if over:
        print(
            f"\nresponses over {RESPONSE_TARGET_MS:g} ms by endpoint and range "
            "(how many, the slowest with its parameters):"
        )
        print(f"{'pass':<10}{'endpoint':<44}{'range':>6}{'over':>6}{'max ms':>8}  pages; slowest")
        for o in over:
            print(
                f"{o['pass']:<10}{o['endpoint']:<44}{o['range']:>6}{o['count']:>6}{o['max_ms']:>8.0f}  "
                f"{', '.join(o['pages'])}; {o['slowest_url']}"
            )
    load = " ".join(str(x) for x in results["config"]["load_average_after"])
    print(f"\nload average after: {load} on {results['config']['cpus']} cores   (written to {out})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ui", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=10_000_000, help="spans of the big tenant")
    parser.add_argument("--logs", type=int, default=2_000_000, help="log records of the big tenant")
    parser.add_argument("--small-spans", type=int, default=200_000, help="spans of each small tenant")
    parser.add_argument("--small-logs", type=int, default=50_000, help="log records of each small tenant")
    parser.add_argument("--hours", type=int, default=6, help="the data covers this many hours up to now")
    parser.add_argument("--big-trace-spans", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--runs", type=int, default=5, help="loads per page and range")
    parser.add_argument("--timeout", type=float, default=30, help="seconds a page may take, then it failed")
    parser.add_argument(
        "--max-age",
        type=float,
        default=45,
        help="reuse the stored data while it ends at most this many minutes ago",
    )
    parser.add_argument("--data", type=Path, default=DATA, help="where the data is kept between runs")
    parser.add_argument("--reload", action="store_true", help="load the data again even if it fits")
    parser.add_argument("--load-only", action="store_true", help="prepare the data, measure nothing")
    parser.add_argument("--no-uncached", action="store_true", help="skip the pass without the query cache")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "ui.json")
    args = parser.parse_args(argv)
    if args.load_only:
        print(json.dumps(prepare_data(args, log=lambda msg: print(msg, flush=True)), indent=2))
        return
    results = run(args, log=lambda msg: print(msg, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results["over_target"] = over_target(results)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results, args.out)


if __name__ == "__main__":
    main()
