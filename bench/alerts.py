"""Alert latency, end to end: `python -m bench.alerts`.

An error burst leaves an application through the OpenTelemetry SDK (spans with status ERROR, exported over
OTLP/gRPC by ``BatchSpanProcessor.force_flush``) at t0; a webhook target on this machine notes when the
firing notification arrives. The time between is what a user waits for the page: ingest (batching, the
WAL, the insert), the evaluation the stored data triggers, the outbox, the delivery. Between runs the alert
resolves (its window passes without errors) and the resolved notification arrives, so every run starts
from an alert that is not firing.

Two profiles, each a fresh installation on a temporary directory:

- embedded: one ``manage.py serve`` process (SQLite, the engine, the scheduler in-process);
- production: PostgreSQL, Redis (broker, channel layer), ``serve_clickhouse`` hosting the engine,
  ``ingestd``, ``celery worker``, ``celery beat`` and the web app under uvicorn, all separate processes
  (the harness of ``tests/e2e/production.py``).

The rule: error rate of one service over a short window above 50 %, no ``for`` duration, a webhook channel.
Ingest runs with its default batch delay unless ``--batch-delay-ms`` says otherwise (the figure records
it). One warm-up run per profile is not counted. Output: p50/p95/max per profile on stdout, merged into
var/bench/alerts.json under "latency" (other keys of that file belong to other benchmarks).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.alerts.recorder import RecordedRequest, Recorder
from tests.e2e.conftest import Server, free_port
from tests.e2e.production import ApiClient, production_stack, start_alerting

REPO = Path(__file__).resolve().parent.parent
SERVICE = "bench-checkout"
TARGET_P95_MS = 1000.0
HOOK_PATH = "/alerts"


@dataclass
class Target:
    """A running installation: where OTLP goes, its REST API, and what describes it in the figures."""

    profile: str
    otlp_grpc: str
    ingest_key: str
    api: ApiClient
    processes: list[str] = field(default_factory=list)


# --- the two profiles -----------------------------------------------------------------------------------


@dataclass
class Serve(Server):
    """The e2e fixture's ``serve`` process with the batch delay chosen here (None: the setting's default)."""

    batch_delay_ms: int | None = None

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env.pop("OLLYSTACK_BATCH_MAX_DELAY_MS", None)
        if self.batch_delay_ms is not None:
            env["OLLYSTACK_BATCH_MAX_DELAY_MS"] = str(self.batch_delay_ms)
        return env


@contextlib.contextmanager
def embedded(root: Path, batch_delay_ms: int | None) -> Iterator[Target]:
    ports = {name: free_port() for name in ("http", "grpc", "otlp_http", "metrics")}
    server = Serve(var_dir=root / "var", ports=ports, batch_delay_ms=batch_delay_ms)
    server.start()
    try:
        tenant = server.create_tenant("bench-alerts")
        args = ("tenant", "create-key", "bench-alerts", "--kind", "api", "--scopes", "read,write", "--json")
        key = json.loads(server.manage(*args).stdout)["key"]
        yield Target(
            "embedded", server.otlp_grpc, tenant["ingest_key"], ApiClient(server.web, key), ["serve"]
        )
    finally:
        server.stop()


@contextlib.contextmanager
def production(root: Path, batch_delay_ms: int | None) -> Iterator[Target]:
    with production_stack(root, quiet=True) as stack:
        # the harness's ingestd batches every 50 ms: the figure uses the setting's default unless told
        delay = "" if batch_delay_ms is None else str(batch_delay_ms)
        alerting = start_alerting(stack, OLLYSTACK_BATCH_MAX_DELAY_MS=delay)
        processes = ["serve_clickhouse", "ingestd", "celery worker", "celery beat", "uvicorn web"]
        yield Target(
            "production", alerting.ingestd.grpc_target, alerting.tenant.ingest_key, alerting.api, processes
        )


PROFILES: dict[str, Callable[[Path, int | None], contextlib.AbstractContextManager[Target]]] = {
    "embedded": embedded,
    "production": production,
}


# --- one profile ----------------------------------------------------------------------------------------


def configure(target: Target, hook_url: str, window_seconds: int) -> int:
    """A webhook channel and the rule through the REST API; the rule's id."""
    channel = target.api.post(
        "/api/v1/alerts/channels",
        {"name": "bench hook", "kind": "webhook", "url": hook_url, "secret": secrets.token_hex(16)},
    )
    rule = target.api.post(
        "/api/v1/alerts/rules",
        {
            "name": "checkout errors",
            "kind": "threshold",
            "source": "red",
            "service": SERVICE,
            "red_figure": "error_rate",
            "comparator": ">",
            "threshold": 0.5,
            "window_seconds": window_seconds,
            "for_seconds": 0,
            "severity": "critical",
            "channels": [channel["id"]],
        },
    )
    return int(rule["id"])


class Burst:
    """Error spans of ``SERVICE`` sent by the SDK's own exporter when flushed."""

    def __init__(self, target: Target, spans: int) -> None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        exporter = OTLPSpanExporter(
            endpoint=target.otlp_grpc,
            insecure=True,
            headers={"authorization": f"Bearer {target.ingest_key}"},
            timeout=5,
        )
        self.provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
        # exports only when flushed: the burst leaves at one known instant
        self.provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=3_600_000, max_export_batch_size=spans)
        )
        self.tracer = self.provider.get_tracer("bench.alerts")
        self.spans = spans

    def send(self) -> float:
        """Record the spans, flush them; the time (``time.time()``) the flush started."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        for _ in range(self.spans):
            with self.tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as span:
                span.set_attribute("http.request.method", "POST")
                span.set_status(Status(StatusCode.ERROR, "payment provider answered 503"))
        t0 = time.time()
        assert self.provider.force_flush(10_000), "the OTLP export did not finish within 10 s"
        return t0

    def close(self) -> None:
        self.provider.shutdown()


def arrival(hook: Recorder, status: str, after: float, timeout: float) -> RecordedRequest | None:
    """The first ``status`` notification that arrived after ``after``, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in hook.requests:
            body = request.json if isinstance(request.json, dict) else {}
            if request.at >= after and body.get("status") == status:
                return request
        time.sleep(0.005)
    return None


def queued_at(target: Target, request: RecordedRequest) -> float | None:
    """When the delivered notification was queued (in the evaluation's transaction), from the delivery
    log; the delivery header starts with the notification's id."""
    note_id = int(request.headers.get("x-ollystack-delivery", "0:").split(":", 1)[0] or 0)
    notes = target.api.get("/api/v1/alerts/notifications?limit=20")["notifications"]
    for note in notes:
        if note["id"] == note_id:
            return datetime.fromisoformat(note["created_at"].replace("Z", "+00:00")).timestamp()
    return None


@dataclass
class Run:
    total: float  # burst sent to notification received; inf: none within the timeout
    queued: float | None = None  # burst sent to notification queued: ingest, evaluation, commit


def measure(
    target: Target, hook: Recorder, args: argparse.Namespace, log: Callable[[str], object]
) -> list[Run]:
    """One ``Run`` per counted run."""
    configure(target, hook.url + HOOK_PATH, args.window)
    burst = Burst(target, args.spans)
    runs: list[Run] = []
    try:
        for number in range(args.runs + 1):
            t0 = burst.send()
            fired = arrival(hook, "firing", t0, args.timeout)
            run = Run(float("inf"))
            if fired is not None:
                queued = queued_at(target, fired)
                run = Run(fired.at - t0, None if queued is None else queued - t0)
            resolved = arrival(hook, "resolved", t0, args.window + args.timeout)
            label = "warm-up" if number == 0 else f"run {number:>2}"
            queued_ms = "?" if run.queued is None else f"{run.queued * 1000:.0f}"
            log(
                f"  {target.profile} {label}: {run.total * 1000:7.1f} ms (queued after {queued_ms} ms)"
                f"{'' if resolved else ' (no resolve)'}"
            )
            if number:
                runs.append(run)
            if resolved is None:  # the alert is still firing: wait until the rule's window is clean
                time.sleep(args.window)
    finally:
        burst.close()
    return runs


def ms(x: float | None) -> float | None:
    return None if x is None or x == float("inf") else round(x * 1000, 1)


def percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}
    return {
        "p50_ms": ms(statistics.median(ordered)),
        "p95_ms": ms(ordered[math.ceil(len(ordered) * 0.95) - 1]),  # nearest rank: 19th of 20
        "max_ms": ms(ordered[-1]),
    }


def summary(runs: list[Run]) -> dict[str, Any]:
    totals = [r.total for r in runs]
    queued = [r.queued for r in runs if r.queued is not None]
    delivery = [r.total - r.queued for r in runs if r.queued is not None and r.total != float("inf")]
    return {
        "runs": len(runs),
        "missed": sum(1 for x in totals if x == float("inf")),
        **percentiles(totals),
        "min_ms": ms(min(totals)) if totals else None,
        "samples_ms": [ms(x) for x in totals],
        # where the time goes: until the notification is queued (ingest batch, insert, evaluation,
        # commit), then until it arrives (dispatch wake-up, HTTP)
        "until_queued": percentiles(queued),
        "queued_to_received": percentiles(delivery),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="+", choices=list(PROFILES), default=list(PROFILES))
    parser.add_argument("--runs", type=int, default=20, help="counted runs per profile (after one warm-up)")
    parser.add_argument("--window", type=int, default=5, help="the rule's window, seconds")
    parser.add_argument("--spans", type=int, default=20, help="error spans per burst")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a notification")
    parser.add_argument(
        "--batch-delay-ms",
        type=int,
        default=None,
        help="OLLYSTACK_BATCH_MAX_DELAY_MS (default: the setting)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "alerts.json")
    args = parser.parse_args()

    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="ollystack-bench-alerts-"))
    try:
        for profile in args.profiles:
            print(f"{profile}: starting", flush=True)
            with Recorder() as hook, PROFILES[profile](work / profile, args.batch_delay_ms) as target:
                runs = measure(target, hook, args, lambda line: print(line, flush=True))
                results[profile] = {"processes": target.processes, **summary(runs)}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"\n{'profile':<12} {'runs':>5} {'missed':>7} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}  target p95"
    )
    for profile, r in results.items():
        verdict = "met" if r["missed"] == 0 and (r["p95_ms"] or 0) < TARGET_P95_MS else "MISSED"
        print(
            f"{profile:<12} {r['runs']:>5} {r['missed']:>7} {r['p50_ms']!s:>9} {r['p95_ms']!s:>9} "
            f"{r['max_ms']!s:>9}  < {TARGET_P95_MS:.0f} ms: {verdict}"
        )
        queued, sent = r["until_queued"], r["queued_to_received"]
        print(
            f"{'':<12} until queued p50/p95 {queued['p50_ms']}/{queued['p95_ms']} ms, "
            f"queued to received p50/p95 {sent['p50_ms']}/{sent['p95_ms']} ms"
        )
    report = {
        "what": "OTLP error burst sent (SDK force_flush) to webhook notification received",
        "rule": {"figure": "error_rate", "threshold": 0.5, "window_seconds": args.window, "for_seconds": 0},
        "spans_per_burst": args.spans,
        "batch_delay_ms": args.batch_delay_ms if args.batch_delay_ms is not None else "default (setting)",
        "target_p95_ms": TARGET_P95_MS,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "profiles": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(args.out.read_text()) if args.out.exists() else {}
    existing["latency"] = report
    args.out.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"\nwritten to {args.out} (key 'latency')")


if __name__ == "__main__":
    main()
