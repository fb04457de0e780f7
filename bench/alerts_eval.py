"""Alert evaluation throughput: `python -m bench.alerts_eval` (or `python -m bench --only alerts_eval`).

In a temporary embedded engine and SQLite database: 50 tenants, each with 8 services of 3 operations sending
spans every second for the last 5 minutes and every minute for the hour before (errors and latencies
varying), log records, and gauges. 1 000 rules over them, the mix a busy installation has: 700 RED
thresholds (error rate, request rate, latency p95/p99; windows of 10 s, 1 min, 5 min), 80 RED absence,
80 RED anomaly, 100 log rules (60 thresholds on words, 40 absence) and 40 rules on services that send
nothing. Then ``alerts.evaluation.evaluate()`` runs once cold (alert states created) and ``--runs`` times
warm, one second apart, as the beat does; printed: rules/s, the seconds per source and per run. PromQL rules
(40, one instant query each) are timed separately, as their own evaluation. Figures are merged into
var/bench/alerts.json under "evaluation". Target: 1 000 rules in < 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NS = 1_000_000_000
TENANTS, SERVICES, OPERATIONS = 50, 8, 3
TARGET_SECONDS = 1.0


def _kv(container: Any, key: str, value: str) -> None:
    container.add(key=key).value.string_value = value


def _traces(rng: random.Random, now_ns: int) -> Any:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    for s in range(SERVICES):
        rs = req.resource_spans.add()
        _kv(rs.resource.attributes, "service.name", f"svc-{s}")
        spans = rs.scope_spans.add().spans
        for op in range(OPERATIONS):
            times = [now_ns - sec * NS for sec in range(300)]
            times += [now_ns - 300 * NS - m * 60 * NS for m in range(60)]
            for at in times:
                start = at - rng.randrange(NS)
                span = spans.add(
                    trace_id=rng.randbytes(16),
                    span_id=rng.randbytes(8),
                    name=f"GET /api/{op}",
                    kind=2,
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + rng.randrange(5, 400) * 1_000_000,
                )
                if rng.random() < 0.05:
                    span.status.code = 2
    return req


def _logs(rng: random.Random, now_ns: int) -> Any:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    _kv(rl.resource.attributes, "service.name", "svc-0")
    records = rl.scope_logs.add().log_records
    words = ["payment declined", "timeout calling db", "user logged in", "cache miss", "order created"]
    for _ in range(300):
        record = records.add(
            time_unix_nano=now_ns - rng.randrange(300 * NS), severity_number=rng.choice([9, 13, 17])
        )
        record.body.string_value = f"{rng.choice(words)} id={rng.randrange(10**6)}"
    return req


def _metrics(now_ns: int) -> Any:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    req = ExportMetricsServiceRequest()
    for s in range(SERVICES):
        rm = req.resource_metrics.add()
        _kv(rm.resource.attributes, "service.name", f"svc-{s}")
        gauge = rm.scope_metrics.add().metrics.add(name="queue.depth").gauge
        for k in range(10):
            gauge.data_points.add(time_unix_nano=now_ns - k * 30 * NS, as_double=float(10 * s + k))
    return req


def _rules(tenants: list[Any], rng: random.Random) -> int:
    from alerts.models import Rule

    rules: list[Rule] = []

    def add(tenant: Any, **fields: Any) -> None:
        rules.append(Rule(tenant=tenant, name=f"rule {len(rules)}", **fields))

    for n in range(1000):
        tenant = tenants[n % TENANTS]
        service = f"svc-{rng.randrange(SERVICES)}"
        operation = rng.choice(["", "", f"GET /api/{rng.randrange(OPERATIONS)}"])
        window = rng.choice([10, 60, 300])
        red: dict[str, Any] = {
            "source": "red",
            "service": service,
            "operation": operation,
            "window_seconds": window,
        }
        if n < 700:
            figure = rng.choice(["error_rate", "error_rate", "request_rate", "latency"])
            threshold = {"error_rate": 0.08, "request_rate": 5.0, "latency": 350.0}[figure]
            add(tenant, **red, red_figure=figure, quantile=rng.choice([0.95, 0.99]), threshold=threshold)
        elif n < 780:
            add(tenant, **red, kind="absence")
        elif n < 860:
            add(tenant, **red, kind="anomaly", red_figure=rng.choice(["error_rate", "latency"]))
        elif n < 920:
            add(
                tenant,
                source="logs",
                log_query=rng.choice(["payment declined", "timeout", "refund"]),
                threshold=3,
            )
        elif n < 960:
            add(tenant, source="logs", kind="absence", log_min_severity=17)
        else:
            add(tenant, **red | {"service": "quiet"}, red_figure="error_rate", threshold=0.1)
    for n in range(40):
        expr = rng.choice(["queue_depth", "sum by (job) (queue_depth)", "max(queue_depth)"])
        add(tenants[n % TENANTS], source="promql", expr=expr, threshold=40, enabled=False)
    Rule.objects.bulk_create(rules)
    return len(rules)


def _evaluate_runs(now: datetime, runs: int) -> tuple[Any, list[Any]]:
    from alerts.evaluation import evaluate

    cold = evaluate(now=now)
    warm = [evaluate(now=now + timedelta(seconds=i + 1)) for i in range(runs)]
    return cold, warm


def _summary(cold: Any, warm: list[Any]) -> dict[str, Any]:
    seconds = [r.seconds for r in warm]
    sources = sorted({k for r in warm for k in r.timings})
    median = statistics.median(seconds)
    return {
        "rules": warm[0].rules,
        "queries": warm[0].queries,
        "failed": warm[0].failed,
        "cold_s": round(cold.seconds, 4),
        "cold_events": cold.events,
        "runs": len(warm),
        "p50_s": round(median, 4),
        "max_s": round(max(seconds), 4),
        "rules_per_s": round(warm[0].rules / median, 1),
        "per_source_p50_s": {
            k: round(statistics.median(r.timings.get(k, 0.0) for r in warm), 4) for k in sources
        },
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    var = Path(tempfile.mkdtemp(prefix="ollystack-bench-alerts-"))
    try:
        os.environ["OLLYSTACK_VAR_DIR"] = str(var)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ollystack.settings.embedded")
        import django

        django.setup()
        from django.core.management import call_command

        from alerts.models import Rule
        from ollystack.clickhouse import EmbeddedBackend, Signal, set_backend
        from ollystack.clickhouse.migrate import apply_migrations
        from ollystack.clickhouse.otlp import frame
        from tenants.models import Tenant

        backend = EmbeddedBackend(var / "clickhouse")
        set_backend(backend)
        apply_migrations(backend, log=lambda _msg: None)
        call_command("migrate", verbosity=0)
        rng = random.Random(args.seed)
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
        now_ns = int(now.timestamp()) * NS
        tenants = [Tenant.objects.create(name=f"bench-{n}") for n in range(TENANTS)]
        started = time.perf_counter()
        for signal, build in (
            (Signal.TRACES, lambda: _traces(rng, now_ns)),
            (Signal.LOGS, lambda: _logs(rng, now_ns)),
            (Signal.METRICS, lambda: _metrics(now_ns)),
        ):
            path = var / f"{signal.value}.seg"
            path.write_bytes(b"".join(frame(str(t.id), build().SerializeToString()) for t in tenants))
            backend.insert_otlp_segment(signal, path, uuid.uuid4().hex)
        spans = backend.query("SELECT count() FROM spans").rows[0][0]
        seconds_rows = backend.query("SELECT count() FROM service_metrics_1s").rows[0][0]
        print(
            f"data: {spans} spans ({seconds_rows} rows per second and operation) "
            f"in {time.perf_counter() - started:.0f} s"
        )
        total = _rules(tenants, rng)
        print(f"rules: {total} ({total - 40} enabled, 40 PromQL timed on their own)")

        cold, warm = _evaluate_runs(now, args.runs)
        result: dict[str, Any] = {"mix": _summary(cold, warm)}
        Rule.objects.update(enabled=False)
        Rule.objects.filter(source="promql").update(enabled=True)
        cold, warm = _evaluate_runs(now + timedelta(seconds=args.runs + 1), args.runs)
        result["promql"] = _summary(cold, warm)
        result["target_s"] = TARGET_SECONDS
        result["cores"] = os.cpu_count()
        result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        backend.close()
        return result
    finally:
        shutil.rmtree(var, ignore_errors=True)


def _print(result: dict[str, Any]) -> None:
    for name in ("mix", "promql"):
        r = result[name]
        print(
            f"{name:7s} {r['rules']:5d} rules  p50 {r['p50_s'] * 1000:7.1f} ms  "
            f"max {r['max_s'] * 1000:7.1f} ms  "
            f"{r['rules_per_s']:9.1f} rules/s  {r['queries']} statements  (cold {r['cold_s'] * 1000:.0f} ms, "
            f"{r['cold_events']} transitions)"
        )
        for source, s in r["per_source_p50_s"].items():
            print(f"        {source:12s} p50 {s * 1000:7.1f} ms")
    verdict = "met" if result["mix"]["p50_s"] < TARGET_SECONDS else "NOT met"
    print(f"target: 1 000 rules in < {TARGET_SECONDS:.0f} s: {verdict}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts_eval", description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    result = run(args)
    _print(result)
    out = REPO / "var" / "bench" / "alerts.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(out.read_text()) if out.exists() else {}
    existing["evaluation"] = result
    out.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"written to {out.relative_to(REPO)} (key 'evaluation')")


if __name__ == "__main__":
    main()
