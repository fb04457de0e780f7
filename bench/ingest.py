"""End-to-end OTLP/gRPC ingest benchmark against a real `manage.py ingestd` (embedded engine).

Several client processes send pre-built 1 000-record requests with many calls in flight. A record counts
as ingested when the server reports it written to ClickHouse (self-metrics on the metrics port), so the
figure is end to end: receive, validate, WAL, batch, INSERT. Peak RSS of ingestd is sampled throughout.
Output: a table on stdout and var/bench/ingest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import psutil

from bench import otlp_data

REPO = Path(__file__).resolve().parent.parent
METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}
# workload -> (signal, request builder). "traces" uses the design's reference batch (1 000 spans, ~190 KB);
# "traces-heavy" spans carry 12 attributes (~520 KB per 1 000 spans).
WORKLOADS: dict[str, tuple[str, Callable[[int, random.Random], bytes]]] = {
    "traces": ("traces", lambda n, rng: otlp_data.trace_request(n, rng, attributes=4)),
    "traces-heavy": ("traces", lambda n, rng: otlp_data.trace_request(n, rng, attributes=12)),
    "logs": ("logs", otlp_data.log_request),
    "metrics": ("metrics", otlp_data.metric_request),
}
WRITTEN = re.compile(
    r'^ollystack_ingest_written_records_total\{[^}]*signal="(\w+)"[^}]*\}\s+([0-9.e+]+)', re.M
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(
    target: str,
    key: str,
    workload: str,
    requests: int,
    inflight: int,
    seed: int,
    records: int,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    rng = random.Random(seed)
    signal, build = WORKLOADS[workload]
    payloads = [build(records, rng) for _ in range(16)]
    ready.put(True)
    go.wait()

    async def run() -> int:
        options = [("grpc.max_send_message_length", 64 << 20)]
        async with grpc.aio.insecure_channel(target, options=options) as channel:
            call = channel.unary_unary(METHODS[signal], request_serializer=None, response_deserializer=None)
            metadata = (("authorization", f"Bearer {key}"),)
            queue = list(range(requests))
            sent = 0

            async def worker() -> None:
                nonlocal sent
                while queue:
                    i = queue.pop()
                    while True:
                        try:
                            await call(payloads[i % len(payloads)], metadata=metadata, timeout=60)
                            break
                        except grpc.aio.AioRpcError as err:
                            if err.code() not in (
                                grpc.StatusCode.UNAVAILABLE,
                                grpc.StatusCode.RESOURCE_EXHAUSTED,
                            ):
                                raise
                            await asyncio.sleep(0.05)
                    sent += 1

            await asyncio.gather(*(worker() for _ in range(inflight)))
            return sent

    out.put(asyncio.run(run()))


def _written(metrics_url: str) -> dict[str, float]:
    with urllib.request.urlopen(metrics_url, timeout=10) as resp:  # noqa: S310 (http URL built here)
        text = resp.read().decode()
    totals: dict[str, float] = {}
    for signal, value in WRITTEN.findall(text):
        totals[signal] = totals.get(signal, 0.0) + float(value)
    return totals


def _thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds per thread name of a process (numbers stripped: ``QueryPipelineEx``, ``python``, …)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        group = re.sub(r"[\d_:-]+$", "", name) or name
        out[group] = out.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _machine_cpu_seconds() -> float:
    times = psutil.cpu_times()
    return float(times.user + times.system + getattr(times, "nice", 0.0))


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 (our own manage.py with fixed arguments)
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def run(args: argparse.Namespace) -> dict[str, Any]:
    var = Path(tempfile.mkdtemp(prefix="ollystack-bench-"))
    ports = {name: _free_port() for name in ("http", "grpc", "otlp_http", "metrics")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLLYSTACK_")}
    env.update(
        DJANGO_SETTINGS_MODULE="ollystack.settings.embedded",
        OLLYSTACK_VAR_DIR=str(var),
        OLLYSTACK_HTTP_PORT=str(ports["http"]),
        OLLYSTACK_OTLP_GRPC_PORT=str(ports["grpc"]),
        OLLYSTACK_OTLP_HTTP_PORT=str(ports["otlp_http"]),
        OLLYSTACK_METRICS_PORT=str(ports["metrics"]),
        OLLYSTACK_LOG_LEVEL="WARNING",
    )
    _manage(env, "migrate", "--noinput")
    _manage(env, "migrate_clickhouse")
    key = json.loads(_manage(env, "tenant", "create", "bench", "--json"))["ingest_key"]
    log = (var / "ingestd.log").open("w")
    # BENCH_OLLYSTACK_X=… reaches ingestd as OLLYSTACK_X=…, for trying settings
    tried = {k.removeprefix("BENCH_"): v for k, v in os.environ.items() if k.startswith("BENCH_OLLYSTACK_")}
    server = subprocess.Popen(
        [sys.executable, "manage.py", "ingestd"],
        cwd=REPO,
        env={**env, **tried},
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    proc = psutil.Process(server.pid)
    peak_rss = 0
    stop_sampling = threading.Event()

    peak_parts: dict[str, int] = {}

    def sample() -> None:
        nonlocal peak_rss
        while not stop_sampling.is_set():
            try:
                rss = proc.memory_info().rss
                if rss > peak_rss:
                    peak_rss = rss
                    if os.environ.get("BENCH_MEMORY_BREAKDOWN"):
                        with open(f"/proc/{proc.pid}/smaps_rollup") as fh:
                            for line in fh:
                                key, _, value = line.partition(":")
                                if key in ("Anonymous", "Private_Clean", "Shared_Clean", "Private_Dirty"):
                                    peak_parts[key] = int(value.split()[0]) // 1024
            except psutil.Error:
                return
            time.sleep(0.05)

    results: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=2
                ) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ingestd did not start:\n{(var / 'ingestd.log').read_text()}")
            time.sleep(0.2)
        threading.Thread(target=sample, daemon=True).start()
        metrics_url = f"http://127.0.0.1:{ports['metrics']}/metrics"
        target = f"127.0.0.1:{ports['grpc']}"
        ctx = mp.get_context("spawn")
        for workload in args.workloads:
            signal = WORKLOADS[workload][0]
            per_client = args.requests // args.clients
            total = per_client * args.clients * args.records
            before = _written(metrics_url).get(signal, 0.0)
            out, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
            clients = [
                ctx.Process(
                    target=_client,
                    args=(
                        target,
                        key,
                        workload,
                        per_client,
                        args.inflight,
                        1000 * n + len(workload),
                        args.records,
                        ready,
                        go,
                        out,
                    ),
                )
                for n in range(args.clients)
            ]
            for c in clients:
                c.start()
            for _ in clients:
                ready.get(timeout=300)
            cpu_before, machine_before = _thread_cpu_seconds(server.pid), _machine_cpu_seconds()
            t_start = time.perf_counter()
            go.set()
            acked = sum(out.get(timeout=900) for _ in clients) * args.records
            t_acked = time.perf_counter()
            for c in clients:
                c.join()
            while _written(metrics_url).get(signal, 0.0) - before < total:
                if time.perf_counter() - t_acked > 120:
                    raise SystemExit(
                        f"{workload}: only {_written(metrics_url).get(signal, 0) - before:.0f} "
                        f"of {total} records written after 120 s"
                    )
                time.sleep(0.02)
            t_written = time.perf_counter()
            elapsed = t_written - t_start
            cpu_after = _thread_cpu_seconds(server.pid)
            threads = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
            server_cores = sum(threads.values()) / elapsed
            top = sorted(threads.items(), key=lambda kv: -kv[1])[:6]
            results[workload] = {
                "records": total,
                "acked": acked,
                "seconds": round(t_written - t_start, 3),
                "records_per_second": round(total / (t_written - t_start)),
                "ack_records_per_second": round(acked / (t_acked - t_start)),
                # cores busy on average while the workload ran: the server (by thread) and the rest
                # of the machine (load generator, background merges of earlier workloads are inside)
                "server_cores": round(server_cores, 2),
                "server_cores_by_thread": {k: round(v / elapsed, 2) for k, v in top},
                "other_cores": round((_machine_cpu_seconds() - machine_before) / elapsed - server_cores, 2),
            }
    finally:
        stop_sampling.set()
        server.terminate()
        server.wait(timeout=60)
        log.close()
        shutil.rmtree(var, ignore_errors=True)
    results["server_peak_rss_mib"] = round(peak_rss / 2**20, 1)
    if peak_parts:
        print("at peak (MiB):", peak_parts)
    results["config"] = {
        "clients": args.clients,
        "inflight_per_client": args.inflight,
        "records_per_request": args.records,
        "requests": args.requests,
        "cpus": os.cpu_count(),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=1200, help="requests per workload, over all clients")
    parser.add_argument("--out", default=str(REPO / "var" / "bench" / "ingest.json"))
    args = parser.parse_args()
    results = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"{'workload':<14}{'records':>10}{'seconds':>10}{'records/s (written)':>22}{'records/s (acked)':>20}"
    )
    for workload in args.workloads:
        r = results[workload]
        print(
            f"{workload:<14}{r['records']:>10}{r['seconds']:>10}{r['records_per_second']:>22,}"
            f"{r['ack_records_per_second']:>20,}"
        )
    print(f"server peak RSS: {results['server_peak_rss_mib']} MiB   (written to {out})")
    for workload in args.workloads:
        r = results[workload]
        threads = ", ".join(f"{k} {v}" for k, v in r["server_cores_by_thread"].items())
        print(f"{workload}: ingestd {r['server_cores']} cores ({threads}); other {r['other_cores']}")


if __name__ == "__main__":
    main()
