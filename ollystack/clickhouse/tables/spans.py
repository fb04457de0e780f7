"""Spans: one row per span, every OTLP field kept.

Record and resource attributes are a string map plus a map of serialized AnyValues for every other type
(see ``common``); scope, event and link attributes are one map of serialized AnyValues. ``weight`` is the
sampling weight (adjusted count) summed by RED aggregates.
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


def spans_def(name: str = "spans") -> TableDef:
    return TableDef(
        name=name,
        columns=f"""
    tenant_id LowCardinality(String),
    timestamp DateTime64(9, 'UTC') CODEC(T64, ZSTD(1)),
    duration_ns Int64 CODEC(T64, ZSTD(1)),
    trace_id FixedString(16) CODEC(ZSTD(3)),
    span_id FixedString(8) CODEC(ZSTD(1)),
    parent_span_id String CODEC(ZSTD(3)),
    trace_state String CODEC(ZSTD(1)),
    flags UInt32 CODEC(ZSTD(1)),
    name LowCardinality(String) CODEC(ZSTD(1)),
    kind Int32 CODEC(T64, ZSTD(1)),
    status_code Int32 CODEC(T64, ZSTD(1)),
    status_message String CODEC(ZSTD(1)),{ATTRIBUTE_COLUMNS}
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
    dropped_links_count UInt32 CODEC(ZSTD(1)),{RESOURCE_SCOPE_COLUMNS}
    weight Float64 DEFAULT 1 CODEC(ZSTD(1)),{RETENTION_COLUMN}
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_duration duration_ns TYPE minmax GRANULARITY 1
""",
        partition_by="toDate(timestamp)",
        # a trace's spans side by side: reading one trace touches one or two granules instead of one per
        # service, and its spans share attributes, so they also compress better (docs/storage.md)
        order_by="(tenant_id, toStartOfHour(timestamp), trace_id)",
        ttl=RETENTION_TTL,
        tiered_by=TIERED_BY,
        # 1024-row granules: a trace is read from one granule per column; 8192 rows per granule made that
        # read decompress 8x more attribute data than needed (trace by id 40 -> 25 ms, table +1 %)
        settings=tuple((k, "1024" if k == "index_granularity" else v) for k, v in MERGE_TREE_SETTINGS),
        # a trace's spans on one shard: a trace is read from one node, and views join its spans locally
        sharding_key="cityHash64(trace_id)",
    )


def spans_table(name: str = "spans") -> str:
    """The CREATE TABLE of one server (cluster mode: :func:`ollystack.clickhouse.tables.render`)."""
    return render(spans_def(name))[0]
