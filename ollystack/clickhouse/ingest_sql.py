"""The ``INSERT ... SELECT`` that turns segment rows into table rows, one per signal.

The SELECT expressions are shared by the embedded engine (``file()`` on the segment) and a server
(``format()`` with the segment inline), so both store identical rows. Each statement flattens
resource → scope → record with ``ARRAY JOIN``, builds resource/scope columns once per scope (before the
last ARRAY JOIN) and drops records whose ids have the wrong length.
"""

from __future__ import annotations

from ollystack.clickhouse import otlp

_MAP = "Map(LowCardinality(String), String)"


def is_string(v: str) -> str:
    """True when a serialized AnyValue holds a string (its first byte is the tag of field 1, wire type 2)."""
    return f"startsWith({v}, '\\n')"


def string_of(v: str) -> str:
    """The text of a serialized string AnyValue: skip the tag byte and the 1-3 byte varint length."""
    return f"substring({v}, if(length({v}) < 130, 3, if(length({v}) < 16387, 4, 5)))"


def raw_map(attrs: str) -> str:
    """Every attribute as its serialized AnyValue (scope, event, link and exemplar attributes)."""
    return f"CAST(arrayMap(x -> (x.key, x.value), {attrs}), '{_MAP}')"


def string_map(attrs: str) -> str:
    """String-valued attributes as plain text: what filters and full-text search read."""
    return (
        f"CAST(arrayMap(x -> (x.key, {string_of('x.value')}), "
        f"arrayFilter(x -> {is_string('x.value')}, {attrs})), '{_MAP}')"
    )


def other_map(attrs: str) -> str:
    """Attributes of every other type, as serialized AnyValues (exact: int64, double, bool, bytes, …)."""
    return (
        f"CAST(arrayMap(x -> (x.key, x.value), "
        f"arrayFilter(x -> NOT {is_string('x.value')}, {attrs})), '{_MAP}')"
    )


def attribute_maps(attrs: str, prefix: str = "attributes") -> list[tuple[str, str]]:
    return [(prefix, string_map(attrs)), (f"{prefix}_other", other_map(attrs))]


def _ns(expr: str) -> str:
    return f"fromUnixTimestamp64Nano(toInt64({expr}), 'UTC')"


# what a row gets when its request did not say (the tables' column default)
DEFAULT_RETENTION_DAYS = 30


def _scope_columns(rs: str, ss: str) -> list[tuple[str, str]]:
    return [
        ("tenant_id", "tenant_id"),
        ("retention_days", f"if(retention_days_sent = 0, {DEFAULT_RETENTION_DAYS}, retention_days_sent)"),
        *attribute_maps(f"{rs}.resource.attributes", "resource_attributes"),
        ("resource_dropped_attributes_count", f"{rs}.resource.dropped_attributes_count"),
        ("resource_schema_url", f"{rs}.schema_url"),
        ("scope_name", f"{ss}.scope.name"),
        ("scope_version", f"{ss}.scope.version"),
        ("scope_attributes", raw_map(f"{ss}.scope.attributes")),
        ("scope_dropped_attributes_count", f"{ss}.scope.dropped_attributes_count"),
        ("scope_schema_url", f"{ss}.schema_url"),
    ]


def _statement(
    table: str,
    source: str,
    resource_field: str,
    scope_field: str,
    records_field: str,
    records_expr: str | None,
    record_columns: list[tuple[str, str]],
    where: str,
    row_fields: tuple[str, ...] = (),
    select: str | None = None,
) -> str:
    """``INSERT INTO table`` the flattened records; with ``select``, a plain SELECT of that instead."""
    scope_cols = _scope_columns("rs", "ss")
    inner = ",\n    ".join([f"{expr} AS {name}" for name, expr in scope_cols] + list(row_fields))
    records = records_expr or f"ss.{records_field}"
    columns = [name for name, _ in scope_cols] + [name for name, _ in record_columns]
    outer = [name for name, _ in scope_cols] + [expr for _, expr in record_columns]
    head = (
        f"SELECT {select}\n"
        if select
        else f"INSERT INTO {table} ({', '.join(columns)})\nSELECT {', '.join(outer)}\n"
    )
    return (
        f"{head}"
        f"FROM (\n  SELECT {inner},\n    {records} AS records\n"
        f"  FROM {source}\n  ARRAY JOIN {resource_field} AS rs\n  ARRAY JOIN rs.{scope_field} AS ss\n)\n"
        f"ARRAY JOIN records AS r\n"
        f"WHERE {where}"
    )


# Trace sampling (parameters per request, see ``otlp.frame``): error spans and slow spans are always kept;
# the others when the trace's randomness (the 56 low bits of its id, as OpenTelemetry defines it) reaches
# the tenant's threshold. A sampled span stands for 2^56 / (2^56 - threshold) spans: its weight.
_SCALE = 1 << otlp.RANDOMNESS_BITS
_ALWAYS_KEPT = (
    "(sample_threshold = 0 OR r.status.code = 2 OR "
    "(slow_ns > 0 AND toInt64(r.end_time_unix_nano) - toInt64(r.start_time_unix_nano) >= slow_ns))"
)
_RANDOMNESS = "reinterpretAsUInt64(reverse(substring(r.trace_id, 10, 7)))"
_SPAN_IDS_VALID = "length(r.trace_id) = 16 AND length(r.span_id) = 8"
_SPAN_KEPT = f"({_ALWAYS_KEPT} OR {_RANDOMNESS} >= sample_threshold)"
_SAMPLING_FIELDS = ("sample_threshold", "slow_ns")


def _spans(source: str, sampled: bool = False, select: str | None = None, where: str | None = None) -> str:
    """Spans of a segment; ``sampled`` applies the sampling rule (only segments holding a sampled tenant's
    requests need it: it costs ~18 % of the insert)."""
    record = [
        ("timestamp", _ns("r.start_time_unix_nano")),
        ("duration_ns", "toInt64(r.end_time_unix_nano) - toInt64(r.start_time_unix_nano)"),
        ("trace_id", "toFixedString(r.trace_id, 16)"),
        ("span_id", "toFixedString(r.span_id, 8)"),
        ("parent_span_id", "r.parent_span_id"),
        ("trace_state", "r.trace_state"),
        ("flags", "r.flags"),
        ("name", "r.name"),
        ("kind", "r.kind"),
        ("status_code", "r.status.code"),
        ("status_message", "r.status.message"),
        *attribute_maps("r.attributes"),
        ("dropped_attributes_count", "r.dropped_attributes_count"),
        ("`events.time_unix_nano`", "arrayMap(e -> e.time_unix_nano, r.events)"),
        ("`events.name`", "arrayMap(e -> e.name, r.events)"),
        ("`events.attributes`", f"arrayMap(e -> {raw_map('e.attributes')}, r.events)"),
        ("`events.dropped_attributes_count`", "arrayMap(e -> e.dropped_attributes_count, r.events)"),
        ("dropped_events_count", "r.dropped_events_count"),
        ("`links.trace_id`", "arrayMap(l -> l.trace_id, r.links)"),
        ("`links.span_id`", "arrayMap(l -> l.span_id, r.links)"),
        ("`links.trace_state`", "arrayMap(l -> l.trace_state, r.links)"),
        ("`links.flags`", "arrayMap(l -> l.flags, r.links)"),
        ("`links.attributes`", f"arrayMap(l -> {raw_map('l.attributes')}, r.links)"),
        ("`links.dropped_attributes_count`", "arrayMap(l -> l.dropped_attributes_count, r.links)"),
        ("dropped_links_count", "r.dropped_links_count"),
    ]
    if not sampled:  # weight keeps its default, 1
        return _statement(
            "spans", source, "resource_spans", "scope_spans", "spans", None, record, where or _SPAN_IDS_VALID
        )
    record.append(("weight", f"if({_ALWAYS_KEPT}, 1.0, {_SCALE} / ({_SCALE} - sample_threshold))"))
    return _statement(
        "spans",
        source,
        "resource_spans",
        "scope_spans",
        "spans",
        None,
        record,
        where or f"{_SPAN_IDS_VALID} AND {_SPAN_KEPT}",
        _SAMPLING_FIELDS,
        select,
    )


def sampled_out_statement(source: str) -> str:
    """Per tenant, how many valid spans of a segment the sampling rule drops (for self-metrics)."""
    return _spans(
        source,
        sampled=True,
        select="tenant_id, count() AS sampled_out",
        where=f"{_SPAN_IDS_VALID} AND NOT {_SPAN_KEPT} GROUP BY tenant_id",
    )


def _logs(source: str, sampled: bool = False) -> str:
    record = [
        ("timestamp", _ns("r.time_unix_nano")),
        ("observed_timestamp", _ns("r.observed_time_unix_nano")),
        ("severity_number", "r.severity_number"),
        ("severity_text", "r.severity_text"),
        ("body", f"if({is_string('r.body')}, {string_of('r.body')}, '')"),
        ("body_value", f"if({is_string('r.body')}, '\\n', r.body)"),
        *attribute_maps("r.attributes"),
        ("dropped_attributes_count", "r.dropped_attributes_count"),
        ("flags", "r.flags"),
        ("trace_id", "r.trace_id"),
        ("span_id", "r.span_id"),
        ("event_name", "r.event_name"),
        ("record_id", "generateSnowflakeID()"),  # unique, and compresses: 13.3x vs 11.4x for logs
    ]
    return _statement(
        "logs",
        source,
        "resource_logs",
        "scope_logs",
        "log_records",
        None,
        record,
        "length(r.trace_id) IN (0, 16) AND length(r.span_id) IN (0, 8)",
    )


# Metric points: the five kinds are mapped onto one tuple shape and concatenated, so the segment is parsed
# once. Each entry: (column, ClickHouse type, expression per kind for point p of metric m, or None = default).
_KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")
_TYPE_IDS = {kind: i + 1 for i, kind in enumerate(_KINDS)}
_EXEMPLAR_TUPLE = otlp.field_type(otlp.NUMBER_POINT, "exemplars")
_KV_ARRAY = otlp.field_type(otlp.NUMBER_POINT, "attributes")
_NUMBER = {"gauge", "sum"}
_HIST = {"histogram", "exponential_histogram"}


def _point_fields() -> list[tuple[str, str, dict[str, str]]]:
    every = dict.fromkeys(_KINDS)

    def on(kinds: set[str] | tuple[str, ...], expr: str) -> dict[str, str]:
        return {k: expr for k in kinds}

    return [
        ("type", "UInt8", {k: str(_TYPE_IDS[k]) for k in _KINDS}),
        ("aggregation_temporality", "Int32", {k: f"m.{k}.aggregation_temporality" for k in ("sum", *_HIST)}),
        ("is_monotonic", "Bool", {"sum": "m.sum.is_monotonic"}),
        ("attrs", _KV_ARRAY, {k: "p.attributes" for k in every}),
        ("start_time_unix_nano", "UInt64", {k: "p.start_time_unix_nano" for k in every}),
        ("time_unix_nano", "UInt64", {k: "p.time_unix_nano" for k in every}),
        ("flags", "UInt32", {k: "p.flags" for k in every}),
        ("value_type", "UInt8", on(_NUMBER, "multiIf(isNotNull(p.as_double), 1, isNotNull(p.as_int), 2, 0)")),
        ("value", "Float64", on(_NUMBER, "ifNull(p.as_double, toFloat64(ifNull(p.as_int, 0)))")),
        ("value_int", "Int64", on(_NUMBER, "ifNull(p.as_int, 0)")),
        ("count", "UInt64", on(("histogram", "exponential_histogram", "summary"), "p.count")),
        ("sum", "Nullable(Float64)", on(("histogram", "exponential_histogram", "summary"), "p.sum")),
        ("min", "Nullable(Float64)", on(_HIST, "p.min")),
        ("max", "Nullable(Float64)", on(_HIST, "p.max")),
        ("bucket_counts", "Array(UInt64)", {"histogram": "p.bucket_counts"}),
        ("explicit_bounds", "Array(Float64)", {"histogram": "p.explicit_bounds"}),
        ("scale", "Int32", {"exponential_histogram": "p.scale"}),
        ("zero_count", "UInt64", {"exponential_histogram": "p.zero_count"}),
        ("zero_threshold", "Float64", {"exponential_histogram": "p.zero_threshold"}),
        ("positive_offset", "Int32", {"exponential_histogram": "p.positive.offset"}),
        ("positive_bucket_counts", "Array(UInt64)", {"exponential_histogram": "p.positive.bucket_counts"}),
        ("negative_offset", "Int32", {"exponential_histogram": "p.negative.offset"}),
        ("negative_bucket_counts", "Array(UInt64)", {"exponential_histogram": "p.negative.bucket_counts"}),
        (
            "quantiles",
            "Array(Tuple(Float64, Float64))",
            {"summary": "arrayMap(q -> (q.quantile, q.value), p.quantile_values)"},
        ),
        ("exemplars", _EXEMPLAR_TUPLE, {k: "p.exemplars" for k in _KINDS if k != "summary"}),
    ]


def _metric_points_expr() -> tuple[str, dict[str, int]]:
    fields = _point_fields()
    positions = {name: i + 1 for i, (name, _t, _e) in enumerate(fields)}
    shape = "Tuple(" + ", ".join(ch_type for _n, ch_type, _e in fields) + ")"
    parts = []
    for kind in _KINDS:
        elements = []
        for _name, ch_type, exprs in fields:
            expr = exprs.get(kind)
            elements.append(
                f"CAST({expr}, '{ch_type}')" if expr is not None else f"defaultValueOfTypeName('{ch_type}')"
            )
        parts.append(f"arrayMap(p -> CAST(tuple({', '.join(elements)}), '{shape}'), m.{kind}.data_points)")
    per_metric = (
        "arrayMap(p -> (m.name, m.description, m.unit, "
        f"{raw_map('m.metadata')}, p), arrayConcat({', '.join(parts)}))"
    )
    return f"arrayFlatten(arrayMap(m -> {per_metric}, ss.metrics))", positions


def _metrics(source: str, sampled: bool = False) -> str:
    records_expr, pos = _metric_points_expr()

    def p(name: str) -> str:
        return f"r.5.{pos[name]}"

    ex = p("exemplars")
    record = [
        ("metric_name", "r.1"),
        ("metric_description", "r.2"),
        ("metric_unit", "r.3"),
        ("metric_metadata", "r.4"),
        ("type", p("type")),
        ("aggregation_temporality", p("aggregation_temporality")),
        ("is_monotonic", p("is_monotonic")),
        ("start_timestamp", _ns(p("start_time_unix_nano"))),
        ("timestamp", _ns(p("time_unix_nano"))),
        *attribute_maps(p("attrs")),
        ("flags", p("flags")),
        *[
            (name, p(name))
            for name in (
                "value_type",
                "value",
                "value_int",
                "count",
                "sum",
                "min",
                "max",
                "bucket_counts",
                "explicit_bounds",
                "scale",
                "zero_count",
                "zero_threshold",
                "positive_offset",
                "positive_bucket_counts",
                "negative_offset",
                "negative_bucket_counts",
            )
        ],
        ("`quantiles.quantile`", f"arrayMap(q -> q.1, {p('quantiles')})"),
        ("`quantiles.value`", f"arrayMap(q -> q.2, {p('quantiles')})"),
        ("`exemplars.filtered_attributes`", f"arrayMap(e -> {raw_map('e.filtered_attributes')}, {ex})"),
        ("`exemplars.time_unix_nano`", f"arrayMap(e -> e.time_unix_nano, {ex})"),
        (
            "`exemplars.value_type`",
            f"arrayMap(e -> toUInt8(multiIf(isNotNull(e.as_double), 1, isNotNull(e.as_int), 2, 0)), {ex})",
        ),
        ("`exemplars.value`", f"arrayMap(e -> ifNull(e.as_double, toFloat64(ifNull(e.as_int, 0))), {ex})"),
        ("`exemplars.value_int`", f"arrayMap(e -> ifNull(e.as_int, 0), {ex})"),
        ("`exemplars.span_id`", f"arrayMap(e -> e.span_id, {ex})"),
        ("`exemplars.trace_id`", f"arrayMap(e -> e.trace_id, {ex})"),
    ]
    return _statement(
        "metric_points", source, "resource_metrics", "scope_metrics", "metrics", records_expr, record, "1"
    )


_BUILDERS = {"traces": _spans, "logs": _logs, "metrics": _metrics}


def insert_statement(signal: str, source: str, sampled: bool = False) -> str:
    """The one INSERT that stores every record of a segment read from ``source``; ``sampled`` when the
    segment holds traces of a tenant with sampling on (logs and metrics are never sampled)."""
    return _BUILDERS[signal](source, sampled)


def parse_check_statement(signal: str, source: str) -> str:
    """The INSERT's SELECT, counted instead of stored: fails exactly when the segment cannot be parsed."""
    select = insert_statement(signal, source).split("\n", 1)[1]
    return f"SELECT count() FROM (\n{select}\n)"
