"""Schema migrations: a fresh install and an upgraded one end up with the same tables, as the table
definitions describe them, and every step is safe to re-run.

The upgrade runs in a process of its own (a fresh engine: chdb allows one per process) that starts from the
first released schema, frozen below, with rows in it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ollystack.clickhouse.migrate import apply_migrations, migration_names, storage_statements
from ollystack.clickhouse.tables import SchemaOptions, render
from ollystack.clickhouse.tables.logs import logs_def
from ollystack.clickhouse.tables.metric_points import metric_points_def
from ollystack.clickhouse.tables.spans import spans_def

DEFINITIONS = (spans_def, logs_def, metric_points_def)
REPO = Path(__file__).resolve().parents[2]

FIRST_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS spans (
    tenant_id LowCardinality(String),
    timestamp DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    duration_ns Int64 CODEC(T64, ZSTD(1)),
    trace_id FixedString(16) CODEC(ZSTD(1)),
    span_id FixedString(8) CODEC(ZSTD(1)),
    parent_span_id String CODEC(ZSTD(1)),
    trace_state String CODEC(ZSTD(1)),
    flags UInt32 CODEC(ZSTD(1)),
    name LowCardinality(String) CODEC(ZSTD(1)),
    kind Int32 CODEC(T64, ZSTD(1)),
    status_code Int32 CODEC(T64, ZSTD(1)),
    status_message String CODEC(ZSTD(1)),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    attributes_other Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    events Nested(
        time_unix_nano UInt64,
        name LowCardinality(String),
        attributes Map(LowCardinality(String), String),
        dropped_attributes_count UInt32
    ),
    dropped_events_count UInt32 CODEC(ZSTD(1)),
    links Nested(
        trace_id String,
        span_id String,
        trace_state String,
        flags UInt32,
        attributes Map(LowCardinality(String), String),
        dropped_attributes_count UInt32
    ),
    dropped_links_count UInt32 CODEC(ZSTD(1)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_attributes_other Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    resource_schema_url LowCardinality(String) CODEC(ZSTD(1)),
    scope_name LowCardinality(String) CODEC(ZSTD(1)),
    scope_version LowCardinality(String) CODEC(ZSTD(1)),
    scope_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    scope_dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    scope_schema_url LowCardinality(String) CODEC(ZSTD(1)),
    service_name LowCardinality(String) MATERIALIZED resource_attributes['service.name'] CODEC(ZSTD(1)),
    weight Float64 DEFAULT 1 CODEC(ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_duration duration_ns TYPE minmax GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (tenant_id, service_name, name, toDateTime(timestamp))
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000""",
    """CREATE TABLE IF NOT EXISTS logs (
    tenant_id LowCardinality(String),
    timestamp DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    observed_timestamp DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    record_id UInt64 CODEC(ZSTD(1)),
    severity_number Int32 CODEC(T64, ZSTD(1)),
    severity_text LowCardinality(String) CODEC(ZSTD(1)),
    body String CODEC(ZSTD(1)),
    body_value String CODEC(ZSTD(1)),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    attributes_other Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    flags UInt32 CODEC(ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    event_name LowCardinality(String) CODEC(ZSTD(1)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_attributes_other Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    resource_schema_url LowCardinality(String) CODEC(ZSTD(1)),
    scope_name LowCardinality(String) CODEC(ZSTD(1)),
    scope_version LowCardinality(String) CODEC(ZSTD(1)),
    scope_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    scope_dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    scope_schema_url LowCardinality(String) CODEC(ZSTD(1)),
    service_name LowCardinality(String) MATERIALIZED resource_attributes['service.name'] CODEC(ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_body body TYPE ngrambf_v1(3, 32768, 3, 0) GRANULARITY 1,
    INDEX idx_severity severity_number TYPE minmax GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (tenant_id, service_name, toDateTime(timestamp))
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000""",
    """CREATE TABLE IF NOT EXISTS metric_points (
    tenant_id LowCardinality(String),
    metric_name LowCardinality(String) CODEC(ZSTD(1)),
    metric_description LowCardinality(String) CODEC(ZSTD(1)),
    metric_unit LowCardinality(String) CODEC(ZSTD(1)),
    metric_metadata Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    type Enum8('gauge' = 1, 'sum' = 2, 'histogram' = 3, 'exponential_histogram' = 4, 'summary' = 5),
    aggregation_temporality Int32 CODEC(T64, ZSTD(1)),
    is_monotonic Bool CODEC(ZSTD(1)),
    start_timestamp DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    timestamp DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    attributes_other Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    flags UInt32 CODEC(ZSTD(1)),
    value_type UInt8 CODEC(ZSTD(1)),
    value Float64 CODEC(Gorilla, ZSTD(1)),
    value_int Int64 CODEC(T64, ZSTD(1)),
    count UInt64 CODEC(T64, ZSTD(1)),
    sum Nullable(Float64) CODEC(ZSTD(1)),
    min Nullable(Float64) CODEC(ZSTD(1)),
    max Nullable(Float64) CODEC(ZSTD(1)),
    bucket_counts Array(UInt64) CODEC(ZSTD(1)),
    explicit_bounds Array(Float64) CODEC(ZSTD(1)),
    scale Int32 CODEC(ZSTD(1)),
    zero_count UInt64 CODEC(ZSTD(1)),
    zero_threshold Float64 CODEC(ZSTD(1)),
    positive_offset Int32 CODEC(ZSTD(1)),
    positive_bucket_counts Array(UInt64) CODEC(ZSTD(1)),
    negative_offset Int32 CODEC(ZSTD(1)),
    negative_bucket_counts Array(UInt64) CODEC(ZSTD(1)),
    quantiles Nested(quantile Float64, value Float64),
    exemplars Nested(
        filtered_attributes Map(LowCardinality(String), String),
        time_unix_nano UInt64,
        value_type UInt8,
        value Float64,
        value_int Int64,
        span_id String,
        trace_id String
    ),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_attributes_other Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    resource_schema_url LowCardinality(String) CODEC(ZSTD(1)),
    scope_name LowCardinality(String) CODEC(ZSTD(1)),
    scope_version LowCardinality(String) CODEC(ZSTD(1)),
    scope_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    scope_dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    scope_schema_url LowCardinality(String) CODEC(ZSTD(1)),
    service_name LowCardinality(String) MATERIALIZED resource_attributes['service.name'] CODEC(ZSTD(1)),
)
ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (tenant_id, metric_name, service_name, toDateTime(timestamp))
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000""",
]


def show_create(backend: Any, table: str) -> str:
    return str(backend.query(f"SHOW CREATE TABLE {table}").rows[0][0])


def differences_from_definitions(backend: Any) -> dict[str, tuple[str, str]]:
    """Tables whose SHOW CREATE differs from a table created right now from their definition."""
    found = {}
    for definition in DEFINITIONS:
        table = definition()
        expected = definition(f"expected_{table.name}")
        backend.command(render(expected)[0])
        try:
            want = show_create(backend, expected.name).replace(f"expected_{table.name}", table.name)
            have = show_create(backend, table.name)
        finally:
            backend.command(f"DROP TABLE {expected.name}")
        if have != want:
            found[table.name] = (have, want)
    return found


def test_a_fresh_install_has_the_tables_of_the_definitions(clickhouse: Any) -> None:
    """0001 creates the final shape, 0002 changes nothing on it, and the storage layout needs no ALTER."""
    assert differences_from_definitions(clickhouse) == {}
    assert storage_statements(clickhouse, SchemaOptions()) == []


def test_migrations_applied_twice_change_nothing(clickhouse: Any) -> None:
    assert apply_migrations(clickhouse, log=lambda _m: None, options=SchemaOptions()) == []
    assert differences_from_definitions(clickhouse) == {}


def upgrade_scenario(workdir: Path) -> dict[str, Any]:
    """First released schema with rows → migrations (twice, then every statement again) → compare."""
    from ollystack.clickhouse import EmbeddedBackend
    from ollystack.clickhouse.migrate import load_migration, migration_statements

    backend = EmbeddedBackend(workdir / "clickhouse")
    for ddl in FIRST_SCHEMA:
        backend.command(ddl)
    backend.command(
        "CREATE TABLE ch_migrations (name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY name"
    )
    backend.command("INSERT INTO ch_migrations (name) VALUES ('0001_initial')")
    for days in (0, 45):
        backend.command(
            "INSERT INTO spans (tenant_id, timestamp, trace_id, span_id, name, resource_attributes, "
            "attributes) "
            f"VALUES ('acme', now64(9) - INTERVAL {days} DAY, 'abcdefghijklmnop', 'abcdefgh', 'GET /cart', "
            "map('service.name', 'cart', 'k8s.pod.name', 'cart-1'), map('http.route', '/cart'))"
        )
        backend.command(
            "INSERT INTO logs (tenant_id, timestamp, body, resource_attributes, attributes) "
            f"VALUES ('acme', now64(9) - INTERVAL {days} DAY, 'order 42 created', "
            "map('service.name', 'cart'), map('code.function', 'create'))"
        )
        backend.command(
            "INSERT INTO metric_points (tenant_id, metric_name, type, timestamp, value, "
            f"resource_attributes) VALUES ('acme', 'cpu', 'gauge', now64(9) - INTERVAL {days} DAY, 0.5, "
            "map('service.name', 'cart'))"
        )
    log: list[str] = []
    first = apply_migrations(backend, log=log.append, options=SchemaOptions())
    second = apply_migrations(backend, log=log.append, options=SchemaOptions())
    for name in migration_names():  # every step is safe to re-run
        for statement in migration_statements(load_migration(name), SchemaOptions(), backend):
            backend.command(statement)
    deadline = time.monotonic() + 60
    while backend.query("SELECT count() FROM system.mutations WHERE NOT is_done").rows[0][0]:
        assert time.monotonic() < deadline, backend.query("SELECT * FROM system.mutations").rows
        time.sleep(0.2)
    rows = {}
    for table, columns in (
        ("spans", "service_name, resource_attributes, attributes, retention_days"),
        ("logs", "service_name, body, attributes, retention_days"),
        ("metric_points", "service_name, metric_name, value, retention_days"),
    ):
        backend.command(f"OPTIMIZE TABLE {table} FINAL")
        rows[table] = [list(map(str, r)) for r in backend.query(f"SELECT {columns} FROM {table}").rows]
    backend.command("OPTIMIZE TABLE slowest_requests_1m FINAL")
    rows["slowest_requests_1m"] = [
        list(map(str, r))
        for r in backend.query(
            "SELECT service_name, arrayMap(r -> r.4, finalizeAggregation(top)) FROM slowest_requests_1m"
        ).rows
    ]
    result = {
        "first": first,
        "second": second,
        "log": log,
        "differences": differences_from_definitions(backend),
        "layout": storage_statements(backend, SchemaOptions()),
        "rows": rows,
    }
    backend.close()
    return result


def run_in_own_process(scenario: str, workdir: Path, module: str = __name__) -> dict[str, Any]:
    """``module.scenario(workdir)`` run in a fresh Python process; its JSON result."""
    call = f"m.{scenario}(pathlib.Path({str(workdir)!r}))"
    code = f"import json, pathlib, {module} as m; print(json.dumps({call}))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_an_upgraded_install_gets_the_same_tables(tmp_path: Path) -> None:
    result = run_in_own_process("upgrade_scenario", tmp_path)
    assert result["first"] == [name for name in migration_names() if name != "0001_initial"]
    assert result["second"] == []
    assert any("0002_codecs_and_retention rewrites stored data" in line for line in result["log"])
    assert result["differences"] == {}
    assert result["layout"] == []
    # the recent rows survive the type changes with their values, the 45-day-old ones are past the default
    # retention (30 days) that rows stored before the migration get
    assert result["rows"] == {
        "spans": [
            [
                "cart",
                "[('service.name', 'cart'), ('k8s.pod.name', 'cart-1')]",
                "[('http.route', '/cart')]",
                "30",
            ]
        ],
        "logs": [["cart", "order 42 created", "[('code.function', 'create')]", "30"]],
        "metric_points": [["cart", "cpu", "0.5", "30"]],
        # filled from the stored spans once, however often the migration runs
        "slowest_requests_1m": [["cart", "['GET /cart']"]],
    }


if __name__ == "__main__":  # pragma: no cover - manual run: python -m tests.clickhouse.test_schema
    print(json.dumps(upgrade_scenario(Path(tempfile.mkdtemp())), indent=2))
