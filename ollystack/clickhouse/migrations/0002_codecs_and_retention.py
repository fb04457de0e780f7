"""Existing installs: measured codecs and types (docs/storage.md), per-row retention with its TTL, and the
storage policy when one is configured. A fresh install already has all of it from 0001; here every step is
a no-op for it.

Rewrites data: the attribute maps change type (values become LowCardinality), which rewrites those columns
of every part, and the new TTL is materialized on every part. Both run in the background after the ALTERs
return. Rows stored before this migration get the column default, 30 days, and those older than that are
deleted by the TTL.
"""

from ollystack.clickhouse.tables import SchemaOptions, render_alter, ttl_rules
from ollystack.clickhouse.tables.logs import logs_def
from ollystack.clickhouse.tables.metric_points import metric_points_def
from ollystack.clickhouse.tables.spans import spans_def

REWRITES_DATA = True

LC_MAP = "Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(1))"
_MAPS = {
    name: LC_MAP
    for name in (
        "attributes",
        "attributes_other",
        "resource_attributes",
        "resource_attributes_other",
        "scope_attributes",
    )
}
RETENTION = "retention_days UInt16 DEFAULT 30 CODEC(ZSTD(1))"

# table -> columns whose type or codec changed (the whole new definition of each)
COLUMNS = {
    "spans": {
        **_MAPS,
        "timestamp": "DateTime64(9, 'UTC') CODEC(T64, ZSTD(1))",
        "trace_id": "FixedString(16) CODEC(ZSTD(3))",
        "parent_span_id": "String CODEC(ZSTD(3))",
    },
    "logs": {
        **_MAPS,
        "timestamp": "DateTime64(9, 'UTC') CODEC(T64, ZSTD(1))",
        "observed_timestamp": "DateTime64(9, 'UTC') CODEC(T64, ZSTD(1))",
        "record_id": "UInt64 CODEC(Delta(8), ZSTD(1))",
        "trace_id": "String CODEC(ZSTD(3))",
        "span_id": "String CODEC(ZSTD(3))",
    },
    "metric_points": {
        **_MAPS,
        "timestamp": "DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1))",
        "value": "Float64 CODEC(ZSTD(1))",
        "bucket_counts": "Array(UInt64) CODEC(T64, ZSTD(1))",
    },
}
DEFINITIONS = {"spans": spans_def, "logs": logs_def, "metric_points": metric_points_def}


def operations(options: SchemaOptions) -> list[str]:
    statements = []
    for table, columns in COLUMNS.items():
        add = [f"ADD COLUMN IF NOT EXISTS {RETENTION}"]
        statements += render_alter(table, add, options, distributed_too=True)
        modify = [f"MODIFY COLUMN {name} {definition}" for name, definition in columns.items()]
        statements += render_alter(table, modify, options, distributed_too=True)
        if options.storage_policy:  # before the TTL that names its volumes
            policy = f"MODIFY SETTING storage_policy = '{options.storage_policy}'"
            statements += render_alter(table, [policy], options)
        ttl = "MODIFY TTL " + ", ".join(ttl_rules(DEFINITIONS[table](), options))
        statements += render_alter(table, [ttl], options)
    return statements
