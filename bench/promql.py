"""PromQL latency against a real Prometheus on the same samples: `python -m bench.promql`.

Builds a realistic metric set (services x routes x status codes: gauges, monotonic counters with resets,
explicit-bucket latency histograms), loads it

- into a temporary embedded engine through the real insert path (OTLP requests framed into segments), and
- into a real Prometheus (Debian package ``prometheus``): the same samples written as OpenMetrics, turned into
  TSDB blocks by ``promtool tsdb create-blocks-from openmetrics``, served by ``prometheus`` on a free port,

then times typical Grafana queries (instant and range: a plain selector, ``sum by`` of ``rate``,
``histogram_quantile`` over summed bucket rates, ``topk``) through OllyStack's ``/prometheus/api/v1/``
endpoints (Django test client in-process, so HTTP parsing and JSON rendering count) and through
Prometheus's HTTP API, and reports p50/p95 of each and the ratio OllyStack/Prometheus. Output: a table on
stdout, merged into var/bench/api.json under "promql" (other keys of that file belong to other benchmarks).

The data model (:class:`Dataset`) is also what the comparison test loads into both systems, with the
Prometheus names spelled out by hand, so that a mapping mistake shows up as a difference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NS = 1_000_000_000
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
INSTALL_HELP = "install it with `apt-get install -y prometheus` (Debian package; `make test` installs it)"


# --- the samples ------------------------------------------------------------------------------------------


@dataclass
class Series:
    """One Prometheus series and the OTel data point stream it comes from."""

    prom_name: str
    labels: dict[str, str]
    samples: list[tuple[int, float]] = field(default_factory=list)  # (ms, value)


@dataclass
class Dataset:
    """Samples described twice: as OTLP metrics (per service) and as the Prometheus series they map to."""

    requests: list[Any]
    series: list[Series]
    start_ms: int
    end_ms: int

    def openmetrics(self) -> Iterator[str]:
        """OpenMetrics text for promtool: series after series, samples in time order, ``# EOF`` last."""
        for s in sorted(self.series, key=lambda s: s.prom_name):
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(s.labels.items()))
            head = f"{s.prom_name}{{{labels}}}" if labels else s.prom_name
            for t, v in s.samples:
                yield f"{head} {_om_value(v)} {_om_time(t)}\n"
        yield "# EOF\n"

    @property
    def points(self) -> int:
        return sum(len(s.samples) for s in self.series)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _om_value(v: float) -> str:
    return repr(float(v)).replace("inf", "Inf").replace("nan", "NaN")


def _om_time(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def build_dataset(
    start_s: int,
    hours: float = 1.0,
    interval_s: int = 15,
    services: int = 3,
    routes: int = 2,
    seed: int = 7,
) -> Dataset:
    """Realistic samples with the edge cases PromQL cares about: jittered scrape times (some exactly on a
    step), a counter reset, a series that stops (goes stale after the lookback), integer attributes, a
    service namespace, bounds that need formatting, a non-monotonic sum and a unit-``1`` gauge."""
    import random

    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    rng = random.Random(seed)
    start_ms = start_s * 1000
    count = int(hours * 3600 // interval_s)
    end_ms = start_ms + count * interval_s * 1000
    bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    requests = []
    all_series: list[Series] = []
    statuses = [200, 500]
    for n in range(services):
        service = ["checkout", "payment", "cart", "search", "auth", "ads", "catalog", "email"][n % 8]
        if n >= 8:
            service = f"{service}{n // 8}"
        namespace = "shop" if n % 2 == 0 else ""
        instance = f"{service}-{n}"
        job = f"{namespace}/{service}" if namespace else service
        base = {"job": job, "instance": instance}
        req = ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        for key, text in (
            ("service.name", service),
            ("service.namespace", namespace),
            ("service.instance.id", instance),
        ):
            if text:
                rm.resource.attributes.add(key=key).value.string_value = text
        sm = rm.scope_metrics.add()
        sm.scope.name = "bench.promql"
        queue = sm.metrics.add(name="queue.depth", unit="{item}", description="Items waiting")
        util = sm.metrics.add(name="process.cpu.utilization", unit="1", description="CPU share")
        conns = sm.metrics.add(name="db.client.connections.usage", unit="{connection}")
        conns.sum.aggregation_temporality, conns.sum.is_monotonic = 2, False
        reqs = sm.metrics.add(name="http.server.requests", unit="{request}", description="Requests")
        reqs.sum.aggregation_temporality, reqs.sum.is_monotonic = 2, True
        dur = sm.metrics.add(name="http.server.request.duration", unit="s", description="Latency")
        dur.histogram.aggregation_temporality = 2

        def times(offset_ms: int, stop: int = count) -> Iterator[int]:
            for i in range(stop):
                jitter = rng.choice((0, 0, 500, 1500, 2500, -500))
                yield start_ms + i * interval_s * 1000 + offset_ms + jitter

        # gauge with two queues; the second queue stops reporting 20 minutes before the end
        for q, stop in (("orders", count), ("emails", max(1, count - 80))):
            s = Series("queue_depth", {**base, "queue": q})
            level = rng.uniform(5, 50)
            for t in times(rng.choice((0, 3000, 7000)), stop):
                level = max(0.0, level + rng.uniform(-3, 3))
                value = round(level, 2)
                p = queue.gauge.data_points.add(time_unix_nano=t * 1_000_000, as_double=value)
                p.attributes.add(key="queue").value.string_value = q
                s.samples.append((t, value))
            all_series.append(s)
        s = Series("process_cpu_utilization_ratio", dict(base))
        for t in times(1000):
            value = round(rng.uniform(0.05, 0.95), 3)
            util.gauge.data_points.add(time_unix_nano=t * 1_000_000, as_double=value)
            s.samples.append((t, value))
        all_series.append(s)
        s = Series("db_client_connections_usage", {**base, "state": "used"})
        for t in times(2000):
            connections = rng.randint(0, 20)
            p = conns.sum.data_points.add(
                start_time_unix_nano=start_ms * 1_000_000, time_unix_nano=t * 1_000_000
            )
            p.as_int = connections
            p.attributes.add(key="state").value.string_value = "used"
            s.samples.append((t, float(connections)))
        all_series.append(s)
        for r in range(routes):
            route = f"/api/v{r}/items"
            for status in statuses:
                s = Series(
                    "http_server_requests_total",
                    {**base, "http_route": route, "http_response_status_code": str(status)},
                )
                total = 0.0
                reset_at = count // 2 if (n + r) % 2 == 0 and status == 200 else -1
                for i, t in enumerate(times(500 * (r + 1))):
                    if i == reset_at:
                        total = 0.0  # process restart
                    total += rng.randint(0, 40) if status == 200 else rng.randint(0, 3)
                    p = reqs.sum.data_points.add(
                        start_time_unix_nano=start_ms * 1_000_000,
                        time_unix_nano=t * 1_000_000,
                        as_double=total,
                    )
                    p.attributes.add(key="http.route").value.string_value = route
                    p.attributes.add(key="http.response.status_code").value.int_value = status
                    s.samples.append((t, total))
                all_series.append(s)
            buckets = [0] * (len(bounds) + 1)
            total_sum = 0.0
            hist = {
                name: Series(f"http_server_request_duration_seconds_{name}", {**base, "http_route": route})
                for name in ("sum", "count")
            }
            bucket_series = [
                Series(
                    "http_server_request_duration_seconds_bucket",
                    {**base, "http_route": route, "le": le},
                )
                for le in [*(_le(b) for b in bounds), "+Inf"]
            ]
            for t in times(4000 + 500 * r):
                for _ in range(rng.randint(0, 30)):
                    latency = rng.lognormvariate(-3 + 0.3 * n + 0.2 * r, 1.0)
                    idx = next((k for k, b in enumerate(bounds) if latency <= b), len(bounds))
                    buckets[idx] += 1
                    total_sum += latency
                p = dur.histogram.data_points.add(
                    start_time_unix_nano=start_ms * 1_000_000,
                    time_unix_nano=t * 1_000_000,
                    count=sum(buckets),
                    sum=total_sum,
                    explicit_bounds=bounds,
                    bucket_counts=buckets,
                )
                p.attributes.add(key="http.route").value.string_value = route
                cumulative = 0
                for k, c in enumerate(buckets):
                    cumulative += c
                    bucket_series[k].samples.append((t, float(cumulative)))
                hist["sum"].samples.append((t, total_sum))
                hist["count"].samples.append((t, float(sum(buckets))))
            all_series += [*bucket_series, *hist.values()]
        requests.append(req)
    return Dataset(requests, all_series, start_ms, end_ms)


def _le(bound: float) -> str:
    """How OllyStack (ClickHouse's toString) writes a bucket bound: shortest round-trip form."""
    text = repr(float(bound))
    return text[:-2] if text.endswith(".0") else text


# --- a real Prometheus ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """A Prometheus server over TSDB blocks backfilled from OpenMetrics text (``promtool``)."""

    def __init__(self, directory: Path, dataset: Dataset) -> None:
        for binary in (PROMETHEUS, PROMTOOL):
            if not Path(binary).exists():
                raise RuntimeError(f"{binary} is missing: {INSTALL_HELP}")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.data = directory / "tsdb"
        source = directory / "samples.om"
        with source.open("w") as out:
            out.writelines(dataset.openmetrics())
        subprocess.run(  # noqa: S603
            [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(self.data)],
            check=True,
            capture_output=True,
        )
        config = directory / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (directory / "prometheus.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=100y",
                "--query.max-samples=100000000",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited: {(self.directory / 'prometheus.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready within 60 s")

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:
            return dict(json.load(exc))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


# --- the benchmark ----------------------------------------------------------------------------------------

QUERIES = [
    ("selector", 'http_server_requests_total{http_route="/api/v0/items"}'),
    ("sum_rate", "sum by (job) (rate(http_server_requests_total[5m]))"),
    (
        "error_ratio",
        'sum by (job) (rate(http_server_requests_total{http_response_status_code="500"}[5m]))'
        " / sum by (job) (rate(http_server_requests_total[5m]))",
    ),
    (
        "p95",
        "histogram_quantile(0.95, sum by (le, job) (rate(http_server_request_duration_seconds_bucket[5m])))",
    ),
    ("topk", "topk(5, sum by (job, http_route) (rate(http_server_requests_total[5m])))"),
]


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 2),
    }


def _load_ollystack(dataset: Dataset, segments: Path, tenant_id: str) -> None:
    from ollystack.clickhouse import Signal, get_backend
    from ollystack.clickhouse.otlp import frame

    backend = get_backend()
    batch: list[bytes] = []
    for n, request in enumerate(dataset.requests):
        batch.append(frame(tenant_id, request.SerializeToString()))
        if len(batch) == 16 or n == len(dataset.requests) - 1:
            path = segments / f"{uuid.uuid4().hex}.seg"
            path.write_bytes(b"".join(batch))
            backend.insert_otlp_segment(Signal.METRICS, path, path.stem)
            path.unlink()
            batch = []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.promql", description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=8, help="services (each: 36 series with 2 routes)")
    parser.add_argument("--routes", type=int, default=2, help="routes per service")
    parser.add_argument("--hours", type=float, default=24.0, help="hours of samples")
    parser.add_argument("--interval", type=int, default=15, help="seconds between samples")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per query and system")
    parser.add_argument("--range-hours", type=float, default=1.0, help="time range of the range queries")
    parser.add_argument("--step", type=int, default=15, help="step of the range queries (seconds)")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "api.json")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="ollystack-bench-promql-"))
    os.environ["OLLYSTACK_VAR_DIR"] = str(work / "var")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ollystack.settings.embedded")
    prometheus: Prometheus | None = None
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.test import Client

        from ollystack.clickhouse import get_backend
        from ollystack.clickhouse.migrate import apply_migrations
        from tenants import logic

        now_s = int(time.time()) // 3600 * 3600
        started = time.monotonic()
        dataset = build_dataset(
            now_s - int(args.hours * 3600), args.hours, args.interval, args.services, args.routes
        )
        print(
            f"dataset: {len(dataset.series)} series, {dataset.points} samples "
            f"({time.monotonic() - started:.0f} s to build)",
            flush=True,
        )
        call_command("migrate", verbosity=0)
        apply_migrations(get_backend(), log=lambda _msg: None)
        tenant = logic.create_tenant(f"bench-{uuid.uuid4().hex[:6]}")
        key = logic.issue_api_key(tenant.tenant_id, "bench").raw
        segments = work / "segments"
        segments.mkdir()
        started = time.monotonic()
        _load_ollystack(dataset, segments, tenant.tenant_id)
        get_backend().command("OPTIMIZE TABLE metric_points FINAL")
        print(f"OllyStack loaded in {time.monotonic() - started:.0f} s", flush=True)
        started = time.monotonic()
        prometheus = Prometheus(work / "prometheus", dataset)
        print(f"Prometheus backfilled and started in {time.monotonic() - started:.0f} s", flush=True)

        client = Client(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_HOST="localhost")
        end_s = dataset.end_ms // 1000
        range_params = {"start": end_s - int(args.range_hours * 3600), "end": end_s, "step": args.step}
        results: dict[str, Any] = {}
        for name, text in QUERIES:
            for kind, path, params in (
                ("instant", "query", {"query": text, "time": end_s}),
                ("range", "query_range", {"query": text, **range_params}),
            ):
                timings: dict[str, list[float]] = {"ollystack": [], "prometheus": []}
                for run in range(args.runs + 1):
                    shifted = dict(params)
                    if run:  # a different time each run: no cache answers
                        for k in ("time", "start", "end"):
                            if k in shifted:
                                shifted[k] = shifted[k] - run
                    t0 = time.perf_counter()
                    response = client.get(f"/prometheus/api/v1/{path}", shifted)
                    t1 = time.perf_counter()
                    body = prometheus.get(path, shifted)
                    t2 = time.perf_counter()
                    if response.status_code != 200 or body.get("status") != "success":
                        raise RuntimeError(f"{name} {kind}: {response.content[:300]!r} / {body}")
                    ours = len(response.json()["data"]["result"])
                    if ours != len(body["data"]["result"]):  # the test compares values; here a sanity check
                        raise RuntimeError(
                            f"{name} {kind}: {ours} series, Prometheus {len(body['data']['result'])}"
                        )
                    if run:
                        timings["ollystack"].append(t1 - t0)
                        timings["prometheus"].append(t2 - t1)
                olly, prom = _percentiles(timings["ollystack"]), _percentiles(timings["prometheus"])
                results[f"{name}_{kind}"] = {
                    "query": text,
                    "ollystack": olly,
                    "prometheus": prom,
                    "ratio_p50": round(olly["p50_ms"] / max(prom["p50_ms"], 0.01), 2),
                }
        print(f"\n{'query':<22} {'OllyStack p50/p95 ms':>22} {'Prometheus p50/p95 ms':>22} {'ratio':>7}")
        for name, r in results.items():
            o, p = r["ollystack"], r["prometheus"]
            print(
                f"{name:<22} {o['p50_ms']:>10.1f} / {o['p95_ms']:<9.1f} {p['p50_ms']:>10.1f} / "
                f"{p['p95_ms']:<9.1f} {r['ratio_p50']:>7.1f}"
            )
        report = {
            "dataset": {
                "series": len(dataset.series),
                "samples": dataset.points,
                "hours": args.hours,
                "interval_s": args.interval,
            },
            "range_query": {"hours": args.range_hours, "step_s": args.step},
            "runs": args.runs,
            "cores": os.cpu_count(),
            "load_average": os.getloadavg(),
            "queries": results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        existing = json.loads(args.out.read_text()) if args.out.exists() else {}
        existing["promql"] = report
        args.out.write_text(json.dumps(existing, indent=2) + "\n")
        print(f"\nwritten to {args.out} (key 'promql')")
    finally:
        if prometheus is not None:
            prometheus.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
