"""Metric data points of all five OTLP kinds in one table.

One table (with a ``type`` column) rather than one per kind: the segment is parsed once per insert, a
metric's points are read with one query whatever its kind, and the kind-specific columns of other kinds
are empty/default, which compresses to almost nothing.
"""

from ollystack.clickhouse.tables import TableDef, render
from ollystack.clickhouse.tables.common import (
    ATTRIBUTE_COLUMNS,
    MERGE_TREE_SETTINGS,
    RESOURCE_SCOPE_COLUMNS,
    RETENTION_COLUMN,
    RETENTION_TTL,
    TIERED_BY,
)

METRIC_TYPES = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def metric_points_def(name: str = "metric_points") -> TableDef:
    types = ", ".join(f"'{t}' = {i + 1}" for i, t in enumerate(METRIC_TYPES))
    return TableDef(
        name=name,
        columns=f"""
    tenant_id LowCardinality(String),
    metric_name LowCardinality(String) CODEC(ZSTD(1)),
    metric_description LowCardinality(String) CODEC(ZSTD(1)),
    metric_unit LowCardinality(String) CODEC(ZSTD(1)),
    metric_metadata Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    type Enum8({types}),
    aggregation_temporality Int32 CODEC(T64, ZSTD(1)),
    is_monotonic Bool CODEC(ZSTD(1)),
    start_timestamp DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    timestamp DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),{ATTRIBUTE_COLUMNS}
    flags UInt32 CODEC(ZSTD(1)),
    value_type UInt8 CODEC(ZSTD(1)),
    value Float64 CODEC(ZSTD(1)),
    value_int Int64 CODEC(T64, ZSTD(1)),
    count UInt64 CODEC(T64, ZSTD(1)),
    sum Nullable(Float64) CODEC(ZSTD(1)),
    min Nullable(Float64) CODEC(ZSTD(1)),
    max Nullable(Float64) CODEC(ZSTD(1)),
    bucket_counts Array(UInt64) CODEC(T64, ZSTD(1)),
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
    ),{RESOURCE_SCOPE_COLUMNS}{RETENTION_COLUMN}
""",
        partition_by="toDate(timestamp)",
        order_by="(tenant_id, metric_name, service_name, toDateTime(timestamp))",
        ttl=RETENTION_TTL,
        tiered_by=TIERED_BY,
        settings=MERGE_TREE_SETTINGS,
    )


def metric_points_table(name: str = "metric_points") -> str:
    """The CREATE TABLE of one server (cluster mode: :func:`ollystack.clickhouse.tables.render`)."""
    return render(metric_points_def(name))[0]
