"""Storage benchmark: bytes on disk per span, log record and metric point, against the OTLP JSON that came in.

Realistic telemetry (``bench.otlp_data.realistic_*``: a Kubernetes shop's traces, logs and metrics) is
framed into segments of about ``OLLYSTACK_BATCH_MAX_ROWS`` records and stored through the ingest insert
(``Backend.insert_otlp_segment``) into a temporary embedded engine with the current schema; the tables are
merged (``OPTIMIZE … FINAL``) and measured from ``system.parts`` (every file of the parts: columns, marks,
primary and skip indexes). The reference is the same requests as OTLP/JSON (compact, hex ids, as an
exporter sends them) and as OTLP/protobuf. Output: a table on stdout and var/bench/storage.json.

Run it in a process of its own (``python -m bench.storage``; chdb allows one engine per process).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import otlp_data

REPO = Path(__file__).resolve().parent.parent
SEGMENT_RECORDS = 10_000  # OLLYSTACK_BATCH_MAX_ROWS' default: the ingest path's segment size
TARGETS = {"traces": 10.0, "logs": 15.0}  # the product's targets for the JSON / disk ratio
RETENTION_DAYS = {"traces": 30, "logs": 30, "metrics": 90}  # a tenant's defaults, written on every row
_HEX_FIELDS = {"traceId", "spanId", "parentSpanId"}


def _signals() -> dict[str, tuple[str, str, Callable[[int, random.Random, int], list[bytes]], Any]]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    return {
        "traces": ("spans", "span", otlp_data.realistic_traces, ExportTraceServiceRequest),
        "logs": ("logs", "log record", otlp_data.realistic_logs, ExportLogsServiceRequest),
        "metrics": (
            "metric_points",
            "metric point",
            otlp_data.realistic_metrics,
            ExportMetricsServiceRequest,
        ),
    }


def _hex_ids(node: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex (protobuf's JSON mapping would use base64)."""
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in _HEX_FIELDS and isinstance(v, str) else _hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def otlp_json(message: Any) -> bytes:
    """A request as OTLP/JSON: lowerCamelCase names, enums as integers, 64-bit integers as decimal strings,
    hex ids, no whitespace."""
    from google.protobuf import json_format

    as_dict = json_format.MessageToDict(message, use_integers_for_enums=True)
    return json.dumps(_hex_ids(as_dict), separators=(",", ":")).encode()


def _records(signal: str, message: Any) -> int:
    if signal == "traces":
        return sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)
    if signal == "logs":
        return sum(len(sl.log_records) for rl in message.resource_logs for sl in rl.scope_logs)
    total = 0
    for rm in message.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                total += len(getattr(m, kind).data_points) if kind else 0
    return total


def _parts(backend: Any, table: str) -> dict[str, int]:
    row = backend.query(
        "SELECT count(), sum(rows), sum(bytes_on_disk), sum(data_compressed_bytes), "
        "sum(data_uncompressed_bytes) FROM system.parts "
        "WHERE active AND database = currentDatabase() AND table = {table:String}",
        {"table": table},
    ).rows[0]
    keys = ("parts", "rows", "bytes_on_disk", "compressed", "uncompressed")
    return {k: int(v or 0) for k, v in zip(keys, row, strict=True)}


def _columns(backend: Any, table: str, top: int) -> list[dict[str, Any]]:
    rows = backend.query(
        "SELECT name, type, compression_codec, data_compressed_bytes, data_uncompressed_bytes "
        "FROM system.columns WHERE database = currentDatabase() AND table = {table:String} "
        "ORDER BY data_compressed_bytes DESC",
        {"table": table},
    ).rows
    return [
        {"column": n, "type": t, "codec": c, "compressed": int(comp), "uncompressed": int(unc)}
        for n, t, c, comp, unc in rows[:top]
    ]


def measure(records: int, seed: int, workdir: Path, signals: list[str], top: int) -> dict[str, Any]:
    """Store ``records`` records of each signal in a fresh engine under ``workdir`` and measure them."""
    from ollystack.clickhouse import EmbeddedBackend, Signal
    from ollystack.clickhouse.migrate import apply_migrations
    from ollystack.clickhouse.otlp import frame
    from ollystack.clickhouse.tables import SchemaOptions

    backend = EmbeddedBackend(workdir / "clickhouse")
    apply_migrations(backend, log=lambda _m: None, options=SchemaOptions())
    tables_before = {
        r[0] for r in backend.query("SELECT name FROM system.tables WHERE database = currentDatabase()").rows
    }
    end_ns = time.time_ns()
    tenant = "5f0c6a7e-2d4b-4c1e-9a3f-bench0000001"
    results: dict[str, Any] = {}
    for signal in signals:
        table, unit, generate, message_type = _signals()[signal]
        requests = generate(records, random.Random(seed), end_ns)
        sent = json_bytes = proto_bytes = 0
        pending: list[bytes] = []
        pending_records = inserted = 0
        for n, raw in enumerate(requests):
            message = message_type.FromString(raw)
            count = _records(signal, message)
            sent += count
            proto_bytes += len(raw)
            json_bytes += len(otlp_json(message))
            pending.append(frame(tenant, raw, retention_days=RETENTION_DAYS[signal]))
            pending_records += count
            if pending_records >= SEGMENT_RECORDS or n == len(requests) - 1:
                path = workdir / f"{signal}-{n}.seg"
                path.write_bytes(b"".join(pending))
                inserted += backend.insert_otlp_segment(Signal(signal), path, path.stem)
                path.unlink()
                pending, pending_records = [], 0
        backend.command(f"OPTIMIZE TABLE {table} FINAL")
        parts = _parts(backend, table)
        if parts["rows"] != sent:
            raise RuntimeError(f"{table}: sent {sent} {unit}s, stored {parts['rows']} rows")
        disk = parts["bytes_on_disk"]
        results[signal] = {
            "table": table,
            "records": sent,
            "requests": len(requests),
            "otlp_json_bytes": json_bytes,
            "otlp_protobuf_bytes": proto_bytes,
            "bytes_on_disk": disk,
            "parts": parts["parts"],
            f"disk_bytes_per_{unit.replace(' ', '_')}": round(disk / sent, 2),
            "json_bytes_per_record": round(json_bytes / sent, 1),
            "ratio_vs_json": round(json_bytes / disk, 2),
            "ratio_vs_protobuf": round(proto_bytes / disk, 2),
            "target_ratio_vs_json": TARGETS.get(signal),
            "columns_by_size": _columns(backend, table, top),
        }
    derived = {}
    for name in sorted(tables_before - {r["table"] for r in results.values()} - {"ch_migrations"}):
        backend.command(f"OPTIMIZE TABLE {name} FINAL") if _parts(backend, name)["parts"] > 1 else None
        size = _parts(backend, name)["bytes_on_disk"]
        if size:
            derived[name] = size
    backend.close()
    return {
        "signals": results,
        "derived_tables_bytes_on_disk": derived,
        "records_per_signal": records,
        "seed": seed,
        "clickhouse": "embedded (chdb)",
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"{'signal':<8} {'records':>8} {'JSON B/rec':>10} {'proto B/rec':>11} {'disk B/rec':>10} "
        f"{'vs JSON':>8} {'vs proto':>8} {'target':>7}"
    ]
    for signal, r in result["signals"].items():
        n = r["records"]
        target = f">={r['target_ratio_vs_json']:.0f}x" if r["target_ratio_vs_json"] else "-"
        lines.append(
            f"{signal:<8} {n:>8} {r['otlp_json_bytes'] / n:>10.1f} {r['otlp_protobuf_bytes'] / n:>11.1f} "
            f"{r['bytes_on_disk'] / n:>10.2f} {r['ratio_vs_json']:>7.1f}x {r['ratio_vs_protobuf']:>7.1f}x "
            f"{target:>7}"
        )
    if result["derived_tables_bytes_on_disk"]:
        derived = ", ".join(f"{k} {v:,} B" for k, v in result["derived_tables_bytes_on_disk"].items())
        lines.append(f"materialized view tables (not counted above): {derived}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="records per signal")
    parser.add_argument("--signals", nargs="+", default=["traces", "logs", "metrics"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--top-columns", type=int, default=12, help="largest columns listed in the JSON")
    parser.add_argument("--out", default=str(REPO / "var" / "bench" / "storage.json"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="ollystack-bench-storage-") as tmp:
        result = measure(args.records, args.seed, Path(tmp), args.signals, args.top_columns)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"written to {out}")
    return result


if __name__ == "__main__":
    main()
