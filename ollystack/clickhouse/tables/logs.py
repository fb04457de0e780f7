"""Log records.

``body`` holds a string body as text (searched by whole words: token bloom filter); ``body_value`` keeps any
other body as its serialized AnyValue (``"\n"`` marks "the body is the string in ``body``", ``""`` no body).
``record_id`` identifies a row for cursor pagination.
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


def logs_def(name: str = "logs") -> TableDef:
    return TableDef(
        name=name,
        columns=f"""
    tenant_id LowCardinality(String),
    timestamp DateTime64(9, 'UTC') CODEC(T64, ZSTD(1)),
    observed_timestamp DateTime64(9, 'UTC') CODEC(T64, ZSTD(1)),
    record_id UInt64 CODEC(Delta(8), ZSTD(1)),
    severity_number Int32 CODEC(T64, ZSTD(1)),
    severity_text LowCardinality(String) CODEC(ZSTD(1)),
    body String CODEC(ZSTD(1)),
    body_value String CODEC(ZSTD(1)),{ATTRIBUTE_COLUMNS}
    flags UInt32 CODEC(ZSTD(1)),
    trace_id String CODEC(ZSTD(3)),
    span_id String CODEC(ZSTD(3)),
    event_name LowCardinality(String) CODEC(ZSTD(1)),{RESOURCE_SCOPE_COLUMNS}{RETENTION_COLUMN}
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_severity severity_number TYPE minmax GRANULARITY 1,
    INDEX idx_body_tokens body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1
""",
        partition_by="toDate(timestamp)",
        order_by="(tenant_id, service_name, toDateTime(timestamp))",
        ttl=RETENTION_TTL,
        tiered_by=TIERED_BY,
        settings=MERGE_TREE_SETTINGS,
    )


def logs_table(name: str = "logs") -> str:
    """The CREATE TABLE of one server (cluster mode: :func:`ollystack.clickhouse.tables.render`)."""
    return render(logs_def(name))[0]
