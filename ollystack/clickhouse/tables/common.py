"""Column groups shared by the signal tables.

Attributes are two maps: ``attributes`` holds string values as text (most attributes; what filters and
searches read), ``attributes_other`` every other type as its serialized OTLP ``AnyValue``, exact to the bit
(an equality filter compares against the serialized form of the wanted value).

Codecs and types are chosen by measurement (``python -m bench.storage``, docs/storage.md). Attribute maps
keep their values as ``LowCardinality``: resource attributes repeat on every row of a pod, record attributes
are mostly a few values per key, and a dictionary index per entry compresses far better (and inserts faster)
than the strings under ZSTD: resource attributes 16.7 → 2.0 bytes per span, span attributes 12.4 → 8.2.
"""

LC_MAP = "Map(LowCardinality(String), LowCardinality(String))"

ATTRIBUTE_COLUMNS = f"""
    attributes {LC_MAP} CODEC(ZSTD(1)),
    attributes_other {LC_MAP} CODEC(ZSTD(1)),
    dropped_attributes_count UInt32 CODEC(ZSTD(1)),"""

RESOURCE_SCOPE_COLUMNS = f"""
    resource_attributes {LC_MAP} CODEC(ZSTD(1)),
    resource_attributes_other {LC_MAP} CODEC(ZSTD(1)),
    resource_dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    resource_schema_url LowCardinality(String) CODEC(ZSTD(1)),
    scope_name LowCardinality(String) CODEC(ZSTD(1)),
    scope_version LowCardinality(String) CODEC(ZSTD(1)),
    scope_attributes {LC_MAP} CODEC(ZSTD(1)),
    scope_dropped_attributes_count UInt32 CODEC(ZSTD(1)),
    scope_schema_url LowCardinality(String) CODEC(ZSTD(1)),
    service_name LowCardinality(String) MATERIALIZED resource_attributes['service.name'] CODEC(ZSTD(1)),"""

# Per-row retention: the tenant's days for the signal, written at insert (a row without it keeps 30 days).
RETENTION_COLUMN = """
    retention_days UInt16 DEFAULT 30 CODEC(ZSTD(1)),"""
RETENTION_TTL = "toDateTime(timestamp) + toIntervalDay(retention_days) DELETE"
TIERED_BY = "toDateTime(timestamp)"

# Replayed segments carry the same insert_deduplication_token; MergeTree drops the repeated blocks.
MERGE_TREE_SETTINGS = (("index_granularity", "8192"), ("non_replicated_deduplication_window", "1000"))
