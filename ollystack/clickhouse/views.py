"""Materialized views: what users look at, maintained by ClickHouse on every insert.

Each view writes into an aggregating target table whose ORDER BY starts with ``tenant_id``; reads merge the
partial aggregates (``sum``, ``min``/``max``, latency histograms), so any range of minutes can be answered
as if computed from the raw rows (latency quantiles within the histogram's 0.4 %, see ``digest``). Span
aggregates sum the span's sampling ``weight``, so request, error and duration figures stay right under
sampling.

- ``service_metrics_1m``: requests, errors, duration sum and a latency histogram per service, operation,
  entry flag and minute. An *entry* span is one where a request enters a service: a SERVER or CONSUMER
  span, or a root span.
- ``service_metrics_1s``: requests, errors and a latency histogram per service, operation, entry flag and
  second, kept two days: what alert rules read, so that their windows end at the current second.
- ``error_aggregates``: error spans per service, exception type and message fingerprint (numbers, uuids and
  hex ids collapsed) and hour, with first/last seen, weighted count, an example message and trace id.
- ``service_topology``: caller → callee calls, errors and latency per minute, from client spans (callee
  = the server span's service when the callee is instrumented, else the peer attributes: peer.service,
  db.system, messaging.system, server.address). See ``client_calls``/``server_spans`` below.
- ``log_volume_1m``: log records per service, severity and minute.
- ``metric_series_1m`` and ``metric_anomalies``: per metric series (metric, service, attributes) and minute
  its value, and its z-score against the trailing hour of per-minute values (at least 3 of them; the
  standard deviation is floored at 1 % of the mean, so a jump in a perfectly steady series stands out),
  so that "what is abnormal right now" is one indexed read. Values are gauges and sums as sent, histogram
  and summary means, and for cumulative counters the increase from one minute to the next.

Cross-service edges need the client span of one service and the server span of another, which arrive in
different requests (and usually the server span first, as it ends first). Each side is kept for a day in a
small lookup table ordered by trace id; whichever side arrives second finds the other with an indexed read
and emits the edge, so every edge is counted once. Sides that meet in the same insert are joined there.
"""

from __future__ import annotations

from dataclasses import replace
from string import Template

from ollystack.clickhouse.ingest_sql import string_of
from ollystack.clickhouse.tables import SchemaOptions, TableDef, local_name, render, render_materialized_view

# tables a view's SELECT may read, written ``$spans`` in the SQL below
_SOURCES = (
    "spans",
    "logs",
    "metric_points",
    "topology_client_spans",
    "topology_server_spans",
    "metric_series_1m",
    "service_metrics_1m",
)

ENTRY_KINDS = (2, 5)  # SPAN_KIND_SERVER, SPAN_KIND_CONSUMER
CALL_KINDS = (3, 4)  # SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER
QUANTILES = (0.5, 0.9, 0.95, 0.99)
_Q = ", ".join(str(q) for q in QUANTILES)
# The latency sketch of every aggregate: a histogram of durations in bfloat16 (8 significant bits), so that
# quantiles are within 0.4 %. Reads merge hundreds of these per chart, and merging histograms is cheaper than
# merging t-digests (every service's RED over 6 h of 10 M spans, per minute: 83 → 45 ms; the topology over
# 6 h: 77 → 27 ms; measured).
DIGEST_FUNCTION = "quantilesBFloat16Weighted"
DIGEST_RELATIVE_ERROR = 2**-8  # half of the last kept bit


def digest(combinator: str = "") -> str:
    """The sketch at the ``QUANTILES`` levels, with an aggregate combinator: ``digest()`` is the stored
    column's function, ``digest("Merge")`` reads stored sketches."""
    return f"{DIGEST_FUNCTION}{combinator}({_Q})"


def digest_state(duration: str, weight: str) -> str:
    """The sketch of ``duration`` (ns) weighted by ``weight`` (a sampling weight). bfloat16 drops the low bits
    of a float32; adding half of the last kept bit first rounds to the nearest value instead of down. The
    sketch's weights are integers: thousandths keep a sampling weight's precision."""
    rounded = f"toInt64(reinterpretAsFloat32(reinterpretAsUInt32(toFloat32({duration})) + 32768))"
    return f"{digest('State')}({rounded}, toUInt64(round({weight} * 1000)))"


AGGREGATE_TTL_DAYS = 90
LOOKUP_TTL_DAYS = 1
# how far apart (in span start time) a client span and its server span may be and still meet
LOOKUP_WINDOW_HOURS = 1
_INSERT_TOKEN = "getSetting('insert_deduplication_token')"  # noqa: S105 (SQL, not a secret)
ANOMALY_WINDOW_MINUTES = 60


def _text(serialized: str) -> str:
    """A serialized string AnyValue as text ('' for other types)."""
    return f"if(startsWith({serialized}, '\\n'), {string_of(serialized)}, '')"


_DEDUP = (("non_replicated_deduplication_window", "1000"),)
# Aggregate rows are wide (latency sketches, hundreds of bytes): small granules make an hour's read small
# (RED for all services over an hour of 10 M spans: p50 18.5 → 12.4 ms, measured).
_AGGREGATE_SETTINGS = (*_DEDUP, ("index_granularity", "1024"))


def _aggregating(name: str, columns: str, order_by: str, partition: str, ttl: str) -> TableDef:
    return TableDef(
        name=name,
        columns=columns,
        order_by=f"({order_by})",
        engine="AggregatingMergeTree",
        partition_by=partition,
        ttl=ttl,
        settings=_AGGREGATE_SETTINGS,
    )


def _view(name: str, to_table: str, select: str, options: SchemaOptions) -> str:
    """A view firing on inserts into the (local) source tables named in ``select`` as ``$spans`` etc."""
    return render_materialized_view(name, to_table, Template(select).substitute(_sources(options)), options)


def _sources(options: SchemaOptions) -> dict[str, str]:
    return {t: local_name(t, options) for t in _SOURCES}


# --- RED per service and operation ------------------------------------------------------------------


def service_metrics_1m_def() -> TableDef:
    return _aggregating(
        "service_metrics_1m",
        f"""
    tenant_id LowCardinality(String),
    service_name LowCardinality(String),
    entry UInt8,
    operation LowCardinality(String),
    minute DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    requests SimpleAggregateFunction(sum, Float64),
    errors SimpleAggregateFunction(sum, Float64),
    duration_ns_sum SimpleAggregateFunction(sum, Float64),
    duration AggregateFunction({digest()}, Int64, UInt64)""",
        "tenant_id, minute, service_name, entry, operation",
        "toYYYYMM(minute)",
        f"minute + INTERVAL {AGGREGATE_TTL_DAYS} DAY",
    )


def service_metrics_1m(options: SchemaOptions) -> list[str]:
    table = service_metrics_1m_def()
    view = f"""
SELECT
    tenant_id,
    service_name,
    toUInt8(kind IN {ENTRY_KINDS} OR parent_span_id = '') AS entry,
    name AS operation,
    toStartOfMinute(timestamp) AS minute,
    sum(weight) AS requests,
    sumIf(weight, status_code = 2) AS errors,
    sum(weight * duration_ns) AS duration_ns_sum,
    {digest_state("duration_ns", "weight")} AS duration
FROM $spans
GROUP BY tenant_id, service_name, entry, operation, minute
"""
    return [*render(table, options), _view("service_metrics_1m_mv", "service_metrics_1m", view, options)]


RED_1S_TTL_DAYS = 2


def service_metrics_1s(options: SchemaOptions) -> list[str]:
    """RED per second, for alert rules: a window ends at the second being evaluated, so an error burst
    counts as soon as its insert commits. Fewer columns than the minute view (no duration sum: rules do
    not use the mean) and kept two days, long enough for the longest rule window (a day)."""
    return [
        *render(service_metrics_1s_def(), options),
        _view("service_metrics_1s_mv", "service_metrics_1s", _red_1s_select(), options),
    ]


def service_metrics_1s_backfill() -> str:
    """Fills ``service_metrics_1s`` from the spans of the days it keeps."""
    kept = f"WHERE timestamp >= now() - INTERVAL {RED_1S_TTL_DAYS} DAY\n"
    return (
        "INSERT INTO service_metrics_1s" + Template(_red_1s_select(kept)).substitute(spans="spans").rstrip()
    )


def service_metrics_1s_def() -> TableDef:
    return TableDef(
        name="service_metrics_1s",
        columns=f"""
    tenant_id LowCardinality(String),
    second DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    service_name LowCardinality(String),
    entry UInt8,
    operation LowCardinality(String),
    requests SimpleAggregateFunction(sum, Float64),
    errors SimpleAggregateFunction(sum, Float64),
    duration AggregateFunction({digest()}, Int64, UInt64)""",
        order_by="(tenant_id, second, service_name, entry, operation)",
        engine="AggregatingMergeTree",
        partition_by="toDate(second)",
        ttl=f"second + INTERVAL {RED_1S_TTL_DAYS} DAY",
        # whole days expire together: dropping a part is cheaper than rewriting it
        settings=(*_AGGREGATE_SETTINGS, ("ttl_only_drop_parts", "1")),
    )


def _red_1s_select(where: str = "") -> str:
    return f"""
SELECT
    tenant_id,
    toDateTime(timestamp, 'UTC') AS second,
    service_name,
    toUInt8(kind IN {ENTRY_KINDS} OR parent_span_id = '') AS entry,
    name AS operation,
    sum(weight) AS requests,
    sumIf(weight, status_code = 2) AS errors,
    {digest_state("duration_ns", "weight")} AS duration
FROM $spans
{where}GROUP BY tenant_id, second, service_name, entry, operation
"""


# Coarser copies of ``service_metrics_1m`` (same columns; ``minute`` is the first minute of the bucket), so
# that a range of hours merges a few rows per key instead of one per minute: the sketch merges are most of
# a RED read's cost (RED for every service over 6 h of 10 M spans: 49 ms from minutes). Each is filled by a
# view on the inserts into ``service_metrics_1m``, whose blocks are already aggregated, so ingest pays for
# merging a few hundred states per insert, not for the spans again. Readers combine them with
# ``ollystack.clickhouse.rollups``.
RED_ROLLUPS = (("service_metrics_5m", 300), ("service_metrics_1h", 3600))


def _rollup_select(seconds: int) -> str:
    return f"""
SELECT
    tenant_id,
    service_name,
    entry,
    operation,
    toStartOfInterval(minute, INTERVAL {seconds} SECOND) AS minute,
    sum(requests) AS requests,
    sum(errors) AS errors,
    sum(duration_ns_sum) AS duration_ns_sum,
    {digest("MergeState")}(duration) AS duration
FROM $service_metrics_1m
GROUP BY tenant_id, service_name, entry, operation, minute
"""


def service_metrics_rollups(options: SchemaOptions) -> list[str]:
    """The tables of ``RED_ROLLUPS`` and the views that fill them from ``service_metrics_1m``'s inserts."""
    statements = []
    for name, seconds in RED_ROLLUPS:
        table = replace(service_metrics_1m_def(), name=name)
        statements += [*render(table, options), _view(f"{name}_mv", name, _rollup_select(seconds), options)]
    return statements


def red_rollup_backfill(name: str, seconds: int) -> str:
    """Fills rollup ``name`` from the minutes already stored (the view adds only what is inserted after it
    exists)."""
    select = Template(_rollup_select(seconds)).substitute(service_metrics_1m="service_metrics_1m")
    return f"INSERT INTO {name}{select.rstrip()}"


# --- the slowest requests per service ---------------------------------------------------------------

SLOWEST_KEPT = 10  # longest entry spans kept per service and minute
# (minus duration, trace id, span id, operation, start, failed)
SLOWEST_TUPLE = "Tuple(Int64, FixedString(16), FixedString(8), String, DateTime64(9, 'UTC'), UInt8)"


def slowest_requests_1m(options: SchemaOptions) -> list[str]:
    """The ``SLOWEST_KEPT`` longest entry spans per service and minute (duration negated, so that
    ``groupArraySorted`` keeps the longest first), so that a service page's "slowest requests" merges a few
    hundred short arrays instead of sorting every request of the range (6 h of 10 M spans: 98 ms). Rows
    expire with the spans they point to."""
    table = TableDef(
        name="slowest_requests_1m",
        columns=f"""
    tenant_id LowCardinality(String),
    service_name LowCardinality(String),
    minute DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    top AggregateFunction(groupArraySorted({SLOWEST_KEPT}), {SLOWEST_TUPLE}),
    retention_days SimpleAggregateFunction(max, UInt16)""",
        order_by="(tenant_id, service_name, minute)",
        engine="AggregatingMergeTree",
        partition_by="toYYYYMM(minute)",
        ttl="minute + toIntervalDay(retention_days)",
        settings=_AGGREGATE_SETTINGS,
    )
    return [
        *render(table, options),
        _view("slowest_requests_1m_mv", "slowest_requests_1m", _SLOWEST, options),
    ]


_SLOWEST = f"""
SELECT
    tenant_id,
    service_name,
    toStartOfMinute(timestamp) AS minute,
    groupArraySortedState({SLOWEST_KEPT})(
        tuple(-duration_ns, trace_id, span_id, toString(name), timestamp, toUInt8(status_code = 2))
    ) AS top,
    max(retention_days) AS retention_days
FROM $spans
WHERE kind IN {ENTRY_KINDS} OR parent_span_id = ''
GROUP BY tenant_id, service_name, minute
"""


def slowest_requests_backfill() -> str:
    """Fills ``slowest_requests_1m`` from the spans already stored."""
    return "INSERT INTO slowest_requests_1m" + Template(_SLOWEST).substitute(spans="spans").rstrip()


# --- errors -------------------------------------------------------------------------------------------

# collapsed in this order: uuids, long hex ids, then any number
_FINGERPRINT_PATTERNS = (
    ("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<uuid>"),
    ("\\\\b(0[xX])?[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\\\\b", "<hex>"),
    ("\\\\b(0[xX])?[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\\\\b", "<hex>"),
    ("\\\\d+(\\\\.\\\\d+)?", "<n>"),
)


def message_pattern(message: str) -> str:
    """SQL: the message with its variable parts collapsed (what groups errors together)."""
    expr = message
    for pattern, placeholder in _FINGERPRINT_PATTERNS:
        expr = f"replaceRegexpAll({expr}, '{pattern}', '{placeholder}')"
    return expr


def error_aggregates(options: SchemaOptions) -> list[str]:
    table = _aggregating(
        "error_aggregates",
        """
    tenant_id LowCardinality(String),
    service_name LowCardinality(String),
    exception_type LowCardinality(String),
    fingerprint UInt64,
    hour DateTime('UTC'),
    pattern SimpleAggregateFunction(any, String),
    first_seen SimpleAggregateFunction(min, DateTime64(9, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(9, 'UTC')),
    count SimpleAggregateFunction(sum, Float64),
    example_message SimpleAggregateFunction(any, String),
    example_trace_id SimpleAggregateFunction(any, FixedString(16)),
    example_span_id SimpleAggregateFunction(any, FixedString(8))""",
        "tenant_id, hour, service_name, exception_type, fingerprint",
        "toYYYYMM(hour)",
        f"hour + INTERVAL {AGGREGATE_TTL_DAYS} DAY",
    )
    exception = "arrayFirstIndex(n -> n = 'exception', `events.name`)"
    attribute = "if(exception > 0, `events.attributes`[exception]['{key}'], '')"
    view = f"""
SELECT
    tenant_id,
    service_name,
    exception_type,
    fingerprint,
    toStartOfHour(timestamp) AS hour,
    any(message_pattern) AS pattern,
    min(timestamp) AS first_seen,
    max(timestamp) AS last_seen,
    sum(weight) AS count,
    any(message) AS example_message,
    any(trace_id) AS example_trace_id,
    any(span_id) AS example_span_id
FROM (
    SELECT
        tenant_id, service_name, timestamp, weight, trace_id, span_id,
        {exception} AS exception,
        {_text(attribute.format(key="exception.type"))} AS exception_type,
        if(exception > 0, {_text(attribute.format(key="exception.message"))}, status_message) AS message,
        {message_pattern("message")} AS message_pattern,
        cityHash64(exception_type, message_pattern) AS fingerprint
    FROM $spans
    WHERE status_code = 2
)
GROUP BY tenant_id, service_name, exception_type, fingerprint, hour
"""
    return [*render(table, options), _view("error_aggregates_mv", "error_aggregates", view, options)]


# --- service topology -----------------------------------------------------------------------------------

_PEER = (
    "multiIf("
    "attributes['peer.service'] != '', attributes['peer.service'], "
    "attributes['db.system'] != '', attributes['db.system'], "
    "attributes['db.system.name'] != '', attributes['db.system.name'], "
    "attributes['messaging.system'] != '', attributes['messaging.system'], "
    "attributes['server.address'] != '', attributes['server.address'], "
    "attributes['net.peer.name'] != '', attributes['net.peer.name'], "
    "'')"
)
_SIDE = "tenant_id, trace_id, span_id, service_name, timestamp, duration_ns, status_code, weight"
_SIDE_COLUMNS = """
    tenant_id LowCardinality(String),
    trace_id FixedString(16),
    span_id FixedString(8),
    service_name LowCardinality(String),
    timestamp DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    duration_ns Int64 CODEC(T64, ZSTD(1)),
    status_code Int32,
    weight Float64,
    token String CODEC(ZSTD(1))"""


def _lookup(name: str, extra: str, order_by: str) -> TableDef:
    return TableDef(
        name=name,
        columns=f"{_SIDE_COLUMNS},{extra}",
        order_by=f"({order_by})",
        partition_by="toStartOfHour(timestamp)",
        ttl=f"toDateTime(timestamp) + INTERVAL {LOOKUP_TTL_DAYS} DAY",
        settings=_DEDUP,
        sharding_key="cityHash64(trace_id)",
    )


def service_topology_def() -> TableDef:
    return _aggregating(
        "service_topology",
        f"""
    tenant_id LowCardinality(String),
    minute DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    caller LowCardinality(String),
    callee LowCardinality(String),
    instrumented UInt8,
    calls SimpleAggregateFunction(sum, Float64),
    errors SimpleAggregateFunction(sum, Float64),
    duration_ns_sum SimpleAggregateFunction(sum, Float64),
    duration AggregateFunction({digest()}, Int64, UInt64)""",
        "tenant_id, minute, caller, callee, instrumented",
        "toYYYYMM(minute)",
        f"minute + INTERVAL {AGGREGATE_TTL_DAYS} DAY",
    )


def service_topology(options: SchemaOptions) -> list[str]:
    """Edges caller → callee per minute, each counted once (see the module docstring)."""
    client_side = _lookup(
        "topology_client_spans", "\n    peer LowCardinality(String)", "tenant_id, trace_id, span_id"
    )
    server_side = _lookup(
        "topology_server_spans", "\n    parent_span_id FixedString(8)", "tenant_id, trace_id, parent_span_id"
    )
    client_mv = f"""
SELECT {_SIDE}, {_PEER} AS peer, {_INSERT_TOKEN} AS token
FROM $spans
WHERE kind IN {CALL_KINDS}
"""
    server_mv = f"""
SELECT {_SIDE}, toFixedString(parent_span_id, 8) AS parent_span_id, {_INSERT_TOKEN} AS token
FROM $spans
WHERE kind IN {ENTRY_KINDS} AND length(parent_span_id) = 8
"""

    def edge(caller_side: str, callee: str, instrumented: str, source: str) -> str:
        c = caller_side
        return f"""
SELECT
    {c}.tenant_id AS tenant_id,
    toStartOfMinute({c}.timestamp) AS minute,
    {c}.service_name AS caller,
    {callee} AS callee,
    {instrumented} AS instrumented,
    sum({c}.weight) AS calls,
    sumIf({c}.weight, {c}.status_code = 2) AS errors,
    sum({c}.weight * {c}.duration_ns) AS duration_ns_sum,
    {digest_state(f"{c}.duration_ns", f"{c}.weight")} AS duration
{source}
GROUP BY tenant_id, minute, caller, callee, instrumented"""

    # Lookups read only the partitions (hours) around this insert's spans and, by the sorting key, the
    # tenants and traces in it; rows the same insert put there (the lookup tables are filled by views on
    # the same insert) are left out by the insert's token: they are counted via ``$spans`` instead.
    def stored(table: str, kinds: tuple[int, ...]) -> str:
        return f"""${table}
    WHERE tenant_id IN (SELECT tenant_id FROM $spans)
      AND trace_id IN (SELECT trace_id FROM $spans WHERE kind IN {kinds})
      AND timestamp >= (SELECT min(timestamp) FROM $spans) - INTERVAL {LOOKUP_WINDOW_HOURS} HOUR
      AND timestamp <= (SELECT max(timestamp) FROM $spans) + INTERVAL {LOOKUP_WINDOW_HOURS} HOUR
      AND token != {_INSERT_TOKEN}"""

    block_servers = f"""SELECT tenant_id, trace_id, toFixedString(parent_span_id, 8) AS parent_span_id,
           service_name
    FROM $spans WHERE kind IN {ENTRY_KINDS} AND length(parent_span_id) = 8"""
    stored_servers = (
        "SELECT tenant_id, trace_id, parent_span_id, service_name "
        f"FROM {stored('topology_server_spans', CALL_KINDS)}"
    )

    # A client span arrives: its server span was stored earlier, or is in this insert.
    client_sees_server = edge(
        "c",
        "s.service_name",
        "1",
        f"""FROM (SELECT {_SIDE} FROM $spans WHERE kind IN {CALL_KINDS}) AS c
INNER JOIN ({stored_servers}
    UNION ALL
    {block_servers}
) AS s ON s.tenant_id = c.tenant_id AND s.trace_id = c.trace_id AND s.parent_span_id = c.span_id
WHERE s.service_name != c.service_name""",
    )
    # A server span arrives: its client span was stored by an earlier insert (same-insert pairs are
    # counted above).
    server_sees_client = edge(
        "c",
        "s.service_name",
        "1",
        f"""FROM ({block_servers}) AS s
INNER JOIN (
    SELECT {_SIDE} FROM {stored("topology_client_spans", ENTRY_KINDS)}
) AS c ON c.tenant_id = s.tenant_id AND c.trace_id = s.trace_id AND c.span_id = s.parent_span_id
WHERE s.service_name != c.service_name""",
    )
    # A client span whose callee is not instrumented (no server span for it so far): its peer attributes
    # name the callee.
    uninstrumented = edge(
        "c",
        "c.peer",
        "0",
        f"""FROM (SELECT {_SIDE}, {_PEER} AS peer FROM $spans WHERE kind IN {CALL_KINDS} AND peer != '') AS c
LEFT ANTI JOIN ({stored_servers}
    UNION ALL
    {block_servers}
) AS s ON s.tenant_id = c.tenant_id AND s.trace_id = c.trace_id AND s.parent_span_id = c.span_id""",
    )
    views = [
        _view(name, "service_topology", sql, options)
        for name, sql in (
            ("service_topology_client_mv", client_sees_server),
            ("service_topology_server_mv", server_sees_client),
            ("service_topology_peer_mv", uninstrumented),
        )
    ]
    return [
        *render(service_topology_def(), options),
        *render(client_side, options),
        *render(server_side, options),
        *views,
        _view("topology_client_spans_mv", "topology_client_spans", client_mv, options),
        _view("topology_server_spans_mv", "topology_server_spans", server_mv, options),
    ]


# --- logs -------------------------------------------------------------------------------------------------

SEVERITY = (
    "multiIf(severity_number = 0, 'UNSPECIFIED', severity_number <= 4, 'TRACE', severity_number <= 8, "
    "'DEBUG', severity_number <= 12, 'INFO', severity_number <= 16, 'WARN', severity_number <= 20, 'ERROR', "
    "'FATAL')"
)


def log_volume_1m(options: SchemaOptions) -> list[str]:
    table = _aggregating(
        "log_volume_1m",
        """
    tenant_id LowCardinality(String),
    minute DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    service_name LowCardinality(String),
    severity LowCardinality(String),
    records SimpleAggregateFunction(sum, UInt64)""",
        "tenant_id, minute, service_name, severity",
        "toYYYYMM(minute)",
        f"minute + INTERVAL {AGGREGATE_TTL_DAYS} DAY",
    )
    view = f"""
SELECT tenant_id, toStartOfMinute(timestamp) AS minute, service_name, {SEVERITY} AS severity,
       count() AS records
FROM $logs
GROUP BY tenant_id, minute, service_name, severity
"""
    return [*render(table, options), _view("log_volume_1m_mv", "log_volume_1m", view, options)]


# --- metric anomalies -------------------------------------------------------------------------------------

# One value per point: gauges and sums their value, histograms and summaries their mean.
_POINT_VALUE = "if(type IN ('gauge', 'sum'), value, if(count > 0, ifNull(sum, 0) / count, nan))"
# Cumulative monotonic sums are compared by their increase from minute to minute.
_CUMULATIVE = "(type = 'sum' AND is_monotonic AND aggregation_temporality = 2)"
_SERIES = "cityHash64(service_name, attributes, attributes_other)"
_POINTS = f"""
    SELECT tenant_id, metric_name, {_SERIES} AS series_id, toStartOfMinute(timestamp) AS minute,
           service_name AS service, attributes AS attrs, toUInt8({_CUMULATIVE}) AS is_cumulative,
           {_POINT_VALUE} AS point_value
    FROM $metric_points WHERE isFinite(point_value)"""


def metric_anomalies(options: SchemaOptions) -> list[str]:
    series = _aggregating(
        "metric_series_1m",
        """
    tenant_id LowCardinality(String),
    metric_name LowCardinality(String),
    series_id UInt64,
    minute DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    service_name SimpleAggregateFunction(any, LowCardinality(String)),
    attributes SimpleAggregateFunction(any, Map(String, String)),
    cumulative SimpleAggregateFunction(max, UInt8),
    value_sum SimpleAggregateFunction(sum, Float64),
    value_count SimpleAggregateFunction(sum, UInt64),
    value_last SimpleAggregateFunction(max, Float64)""",
        "tenant_id, metric_name, series_id, minute",
        "toYYYYMM(minute)",
        f"minute + INTERVAL {AGGREGATE_TTL_DAYS} DAY",
    )
    series_mv = f"""
SELECT
    tenant_id, metric_name, series_id, minute,
    any(service) AS service_name, any(attrs) AS attributes, max(is_cumulative) AS cumulative,
    sum(point_value) AS value_sum, count() AS value_count, max(point_value) AS value_last
FROM ({_POINTS})
GROUP BY tenant_id, metric_name, series_id, minute
"""
    anomalies = TableDef(
        name="metric_anomalies",
        columns="""
    tenant_id LowCardinality(String),
    minute DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    metric_name LowCardinality(String),
    series_id UInt64,
    service_name LowCardinality(String),
    attributes Map(LowCardinality(String), String),
    value Float64,
    mean Float64,
    stddev Float64,
    samples UInt32,
    z_score Float64,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)""",
        order_by="(tenant_id, minute, metric_name, series_id)",
        engine="ReplacingMergeTree",
        engine_args=("computed_at",),
        partition_by="toYYYYMM(minute)",
        ttl=f"minute + INTERVAL {AGGREGATE_TTL_DAYS} DAY",
        settings=_DEDUP,
    )
    # The current minute's value comes from this insert; the trailing window (the hour before it) from
    # metric_series_1m, one indexed read for the series in this insert. For cumulative counters the values
    # compared are increases from one minute to the next.
    anomalies_mv = f"""
WITH
    current AS (
        SELECT tenant_id, metric_name, series_id, minute,
               any(service) AS service_name, any(attrs) AS attributes, max(is_cumulative) AS cumulative,
               if(cumulative = 1, max(point_value), avg(point_value)) AS value
        FROM ({_POINTS})
        GROUP BY tenant_id, metric_name, series_id, minute
    ),
    history AS (
        SELECT tenant_id, metric_name, series_id,
               arraySort(x -> x.1, groupArray((minute, sum_v / count_v, last_v))) AS points
        FROM (
            SELECT tenant_id, metric_name, series_id, minute,
                   sum(value_sum) AS sum_v, sum(value_count) AS count_v, max(value_last) AS last_v
            FROM $metric_series_1m
            WHERE (tenant_id, metric_name, series_id) IN (
                SELECT tenant_id, metric_name, series_id FROM current
            )
              AND minute >= (SELECT min(minute) FROM current) - INTERVAL {ANOMALY_WINDOW_MINUTES + 1} MINUTE
            GROUP BY tenant_id, metric_name, series_id, minute
        )
        GROUP BY tenant_id, metric_name, series_id
    )
SELECT tenant_id, minute, metric_name, series_id, service_name, attributes,
       value, mean, stddev, samples, z_score
FROM (
SELECT
    c.tenant_id AS tenant_id, c.minute AS minute, c.metric_name AS metric_name, c.series_id AS series_id,
    c.service_name AS service_name, c.attributes AS attributes,
    arrayFilter(p -> p.1 < c.minute AND p.1 >= c.minute - INTERVAL {ANOMALY_WINDOW_MINUTES} MINUTE,
                h.points) AS window,
    if(c.cumulative = 1, arrayMap(p -> p.3, window), arrayMap(p -> p.2, window)) AS levels,
    if(c.cumulative = 1, arrayDifference(levels), levels) AS diffs,
    if(c.cumulative = 1, arrayPopFront(diffs), diffs) AS history_values,
    if(c.cumulative = 1, c.value - arrayLastOrNull(x -> 1, levels), c.value) AS current_value,
    ifNull(current_value, nan) AS value,
    arrayAvg(history_values) AS mean,
    arrayReduce('stddevPop', history_values) AS stddev,
    length(history_values) AS samples,
    if(samples >= 3, (value - mean) / greatest(stddev, abs(mean) * 0.01, 1e-9), 0) AS z_score
FROM current AS c
LEFT JOIN history AS h USING (tenant_id, metric_name, series_id)
)
"""
    return [
        *render(series, options),
        _view("metric_series_1m_mv", "metric_series_1m", series_mv, options),
        *render(anomalies, options),
        _view("metric_anomalies_mv", "metric_anomalies", anomalies_mv, options),
    ]


# --- ingest bookkeeping ---------------------------------------------------------------------------------


def ingest_batches(options: SchemaOptions) -> list[str]:
    """Rows stored per insert (its deduplication token) and tenant, so the ingest path knows exactly what a
    segment wrote: the engine's own count of written rows includes every view's rows too. Read by token,
    across tenants, only by the ingest path (``Backend.rows_written_by_tenant``)."""
    table = TableDef(
        name="ingest_batches",
        columns="""
    token String,
    signal LowCardinality(String),
    tenant_id LowCardinality(String),
    rows UInt64,
    inserted_at DateTime('UTC') DEFAULT now()""",
        order_by="(token, signal, tenant_id)",
        partition_by="toDate(inserted_at)",
        ttl="inserted_at + INTERVAL 2 DAY",
        settings=_DEDUP,
        sharding_key="cityHash64(token)",
    )
    views = [
        _view(
            f"ingest_batches_{table_name}_mv",
            "ingest_batches",
            f"""
SELECT getSetting('insert_deduplication_token') AS token, '{signal}' AS signal, tenant_id, count() AS rows
FROM ${table_name}
GROUP BY tenant_id
""",
            options,
        )
        for signal, table_name in (("traces", "spans"), ("logs", "logs"), ("metrics", "metric_points"))
    ]
    return [*render(table, options), *views]


def all_views(options: SchemaOptions) -> list[str]:
    """Every statement, in creation order (target tables before the views that write to them)."""
    return [
        *ingest_batches(options),
        *service_metrics_1m(options),
        *service_metrics_rollups(options),
        *service_metrics_1s(options),
        *slowest_requests_1m(options),
        *error_aggregates(options),
        *service_topology(options),
        *log_volume_1m(options),
        *metric_anomalies(options),
    ]
