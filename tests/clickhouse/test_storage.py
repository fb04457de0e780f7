"""The storage layer against the real embedded engine: migrations, inserts, dedup, isolation, locking."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ollystack.clickhouse import Backend, EmbeddedBackend, QueryError, Signal
from ollystack.clickhouse.migrate import apply_migrations, migration_names
from ollystack.clickhouse.otlp import frame
from ollystack.clickhouse.queries import select
from ollystack.telemetry.logs import LogQuery, search_logs
from ollystack.telemetry.metrics import MetricQuery, list_metric_names, list_metric_points
from ollystack.telemetry.services import list_services
from ollystack.telemetry.traces import get_trace
from tests.telemetry.builders import (
    BASE_NS,
    NS,
    full_logs_request,
    full_metrics_request,
    full_trace_request,
)

WINDOW = (BASE_NS - 10 * NS, BASE_NS + 3600 * NS)


def count(backend: Any, table: str, tenant_id: str) -> int:
    sql, params = select(table, tenant_id, ["count()"]).sql()
    return int(backend.query(sql, params).rows[0][0])


def test_migrations_are_rerunnable(clickhouse: Any) -> None:
    assert apply_migrations(clickhouse, log=lambda _m: None) == []
    recorded = [r[0] for r in clickhouse.query("SELECT name FROM ch_migrations ORDER BY name").rows]
    assert recorded == migration_names()


def test_replayed_segment_is_deduplicated(clickhouse: Any, insert_requests: Any, tenant_id: str) -> None:
    req = full_trace_request(os.urandom(16))
    insert_requests(Signal.TRACES, (tenant_id, req), token="segment-42")
    insert_requests(Signal.TRACES, (tenant_id, req), token="segment-42")
    assert count(clickhouse, "spans", tenant_id) == 3
    insert_requests(Signal.TRACES, (tenant_id, req), token="segment-43")
    assert count(clickhouse, "spans", tenant_id) == 6


def test_tenant_isolation_through_every_read_function(insert_requests: Any, tenant_id: str) -> None:
    other = f"{tenant_id}-b"
    trace_id = os.urandom(16)
    insert_requests(Signal.TRACES, (tenant_id, full_trace_request(trace_id)))
    insert_requests(Signal.LOGS, (tenant_id, full_logs_request()))
    insert_requests(Signal.METRICS, (tenant_id, full_metrics_request()))
    assert get_trace(tenant_id, trace_id.hex())
    assert get_trace(other, trace_id.hex()) == []
    assert search_logs(other, LogQuery(*WINDOW)).records == []
    assert search_logs(other, LogQuery(*WINDOW, trace_id=(b"\x01" * 16).hex())).records == []
    assert list_metric_points(other, MetricQuery(*WINDOW)) == []
    assert list_metric_names(other, *WINDOW) == []
    assert list_services(other, *WINDOW) == []


def test_two_tenants_in_one_segment(insert_requests: Any, tenant_id: str) -> None:
    other = f"{tenant_id}-b"
    a, b = os.urandom(16), os.urandom(16)
    inserted = insert_requests(
        Signal.TRACES, (tenant_id, full_trace_request(a, "svc-a")), (other, full_trace_request(b, "svc-b"))
    )
    assert inserted == 6
    assert {s["serviceName"] for s in get_trace(tenant_id, a.hex())} == {"svc-a"}
    assert get_trace(tenant_id, b.hex()) == []
    assert {s["serviceName"] for s in get_trace(other, b.hex())} == {"svc-b"}
    assert list_services(other, *WINDOW) == ["svc-b"]


def test_spans_with_bad_ids_are_dropped(clickhouse: Any, insert_requests: Any, tenant_id: str) -> None:
    trace_id = os.urandom(16)
    req = full_trace_request(trace_id)
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[1].span_id = b"\x01\x02"
    spans[2].trace_id = b""
    assert insert_requests(Signal.TRACES, (tenant_id, req)) == 1
    assert [s["spanId"] for s in get_trace(tenant_id, trace_id.hex())] == [spans[0].span_id.hex()]


def test_get_trace_rejects_malformed_ids(clickhouse: Any, tenant_id: str) -> None:
    for bad in ("", "abc", "z" * 32, "0" * 31, "0" * 33):
        with pytest.raises(ValueError, match="32 hexadecimal"):
            get_trace(tenant_id, bad)


def test_inline_format_variant_stores_identical_rows(
    clickhouse: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server path (segment inline via format()) yields the same rows as file() on the embedded engine."""
    assert isinstance(clickhouse, EmbeddedBackend)
    monkeypatch.chdir(tmp_path)  # chdb caches a schema sent as a string under the working directory
    file_tenant, inline_tenant = "file-" + os.urandom(4).hex(), "inline-" + os.urandom(4).hex()
    trace_id = os.urandom(16)
    for signal, req in (
        (Signal.TRACES, full_trace_request(trace_id)),
        (Signal.LOGS, full_logs_request()),
        (Signal.METRICS, full_metrics_request()),
    ):
        path = tmp_path / f"{signal.value}.seg"
        path.write_bytes(frame(file_tenant, req.SerializeToString()))
        by_file = clickhouse.insert_otlp_segment(signal, path, f"f-{file_tenant}-{signal.value}")
        data = frame(inline_tenant, req.SerializeToString())
        by_inline = clickhouse.insert_otlp_segment_inline(signal, data, f"i-{inline_tenant}-{signal.value}")
        assert by_file == by_inline > 0
    assert get_trace(file_tenant, trace_id.hex()) == get_trace(inline_tenant, trace_id.hex())
    assert (
        search_logs(file_tenant, LogQuery(*WINDOW)).records
        == search_logs(inline_tenant, LogQuery(*WINDOW)).records
    )
    assert list_metric_points(file_tenant, MetricQuery(*WINDOW)) == list_metric_points(
        inline_tenant, MetricQuery(*WINDOW)
    )


def test_query_binds_parameters(clickhouse: Any) -> None:
    values = {"s": "it's \\ a\ttab\nnewline", "n": -(2**63), "u": 2**64 - 1, "a": ["x'y", "z\\"], "f": 0.1}
    result = clickhouse.query(
        "SELECT {s:String} AS s, {n:Int64} AS n, {u:UInt64} AS u, {a:Array(String)} AS a, {f:Float64} AS f",
        values,
    )
    assert result.as_dicts() == [values]


def test_concurrent_queries_from_threads(clickhouse: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda i: clickhouse.query("SELECT {i:UInt32} + 1", {"i": i}).rows, range(64))
        )
    assert results == [[(i + 1,)] for i in range(64)]


def test_second_process_gets_engine_locked_error(clickhouse: Any) -> None:
    assert isinstance(clickhouse, EmbeddedBackend)
    script = textwrap.dedent(
        f"""
        from ollystack.clickhouse import EmbeddedBackend, EngineLockedError
        try:
            EmbeddedBackend({str(clickhouse.path)!r})
        except EngineLockedError as exc:
            print("LOCKED", exc)
        """
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=120, check=False
    )
    assert "LOCKED" in proc.stdout, proc.stdout + proc.stderr
    assert (
        f"the embedded ClickHouse engine under {clickhouse.path} is in use by another OllyStack process"
        in proc.stdout
    )
    assert "OLLYSTACK_CLICKHOUSE_URL" in proc.stdout


def test_migrate_command_reports_locked_engine(clickhouse: Any) -> None:
    assert isinstance(clickhouse, EmbeddedBackend)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OLLYSTACK_VAR_DIR": str(clickhouse.path.parent), "DJANGO_SETTINGS_MODULE": ""}
    env.pop("DJANGO_SETTINGS_MODULE")
    proc = subprocess.run(
        [sys.executable, "manage.py", "migrate_clickhouse"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "is in use by another OllyStack process" in proc.stderr


def test_a_query_failing_mid_stream_does_not_spoil_the_next_one(clickhouse: Backend) -> None:
    for _ in range(5):  # every session of the pool
        with pytest.raises(QueryError, match="throwIf"):
            clickhouse.query("SELECT number, throwIf(number = 70000) FROM numbers(100000)")
        assert clickhouse.query("SELECT 1 AS one").rows == [(1,)]
