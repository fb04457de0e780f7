"""Reading metric data points and metric names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import (
    ATTRIBUTE_COLUMNS,
    RESOURCE_SCOPE_COLUMNS,
    b64_map,
    b64_maps,
    ns,
    select,
    time_range,
)
from ollystack.telemetry.anyvalue import (
    double_json,
    record_attributes,
    resource_and_scope,
    serialized_attributes,
)

MAX_LIMIT = 10_000
_JSON_TYPES = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponential_histogram": "exponentialHistogram",
    "summary": "summary",
}

POINT_COLUMNS = (
    "metric_name",
    "metric_description",
    "metric_unit",
    b64_map("metric_metadata"),
    "toString(type) AS type_name",
    "aggregation_temporality",
    "is_monotonic",
    f"{ns('start_timestamp')} AS start_ns",
    f"{ns('timestamp')} AS time_ns",
    *ATTRIBUTE_COLUMNS,
    "flags",
    "value_type",
    "value",
    "toString(value_int) AS value_int_str",
    "toString(count) AS count_str",
    "sum",
    "min",
    "max",
    "arrayMap(x -> toString(x), bucket_counts) AS bucket_counts_str",
    "explicit_bounds",
    "scale",
    "toString(zero_count) AS zero_count_str",
    "zero_threshold",
    "positive_offset",
    "arrayMap(x -> toString(x), positive_bucket_counts) AS positive_str",
    "negative_offset",
    "arrayMap(x -> toString(x), negative_bucket_counts) AS negative_str",
    "quantiles.quantile AS q_quantile",
    "quantiles.value AS q_value",
    b64_maps("exemplars.filtered_attributes", "ex_attributes"),
    "arrayMap(x -> toString(x), exemplars.time_unix_nano) AS ex_time",
    "exemplars.value_type AS ex_value_type",
    "exemplars.value AS ex_value",
    "arrayMap(x -> toString(x), exemplars.value_int) AS ex_value_int",
    "arrayMap(x -> lower(hex(x)), exemplars.span_id) AS ex_span_id",
    "arrayMap(x -> lower(hex(x)), exemplars.trace_id) AS ex_trace_id",
    *RESOURCE_SCOPE_COLUMNS,
)


@dataclass(frozen=True)
class MetricQuery:
    start_ns: int
    end_ns: int
    name: str | None = None
    service: str | None = None
    limit: int = 1000


def _exemplars(row: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for attrs, t, vt, v, vi, span, trace in zip(
        row["ex_attributes"],
        row["ex_time"],
        row["ex_value_type"],
        row["ex_value"],
        row["ex_value_int"],
        row["ex_span_id"],
        row["ex_trace_id"],
        strict=True,
    ):
        ex: dict[str, Any] = {"filteredAttributes": serialized_attributes(attrs), "timeUnixNano": t}
        if vt == 1:
            ex["asDouble"] = double_json(v)
        elif vt == 2:
            ex["asInt"] = vi
        ex["spanId"] = span
        ex["traceId"] = trace
        out.append(ex)
    return out


def _optional_double(point: dict[str, Any], key: str, value: float | None) -> None:
    if value is not None:
        point[key] = double_json(value)


def point_json(row: dict[str, Any]) -> dict[str, Any]:
    kind = row["type_name"]
    point: dict[str, Any] = {
        "name": row["metric_name"],
        "description": row["metric_description"],
        "unit": row["metric_unit"],
        "metadata": serialized_attributes(row["metric_metadata_b64"]),
        "type": _JSON_TYPES[kind],
        "attributes": record_attributes(row),
        "startTimeUnixNano": row["start_ns"],
        "timeUnixNano": row["time_ns"],
        "flags": row["flags"],
    }
    if kind in ("gauge", "sum"):
        if row["value_type"] == 1:
            point["asDouble"] = double_json(row["value"])
        elif row["value_type"] == 2:
            point["asInt"] = row["value_int_str"]
    if kind in ("sum", "histogram", "exponential_histogram"):
        point["aggregationTemporality"] = row["aggregation_temporality"]
    if kind == "sum":
        point["isMonotonic"] = bool(row["is_monotonic"])
    if kind in ("histogram", "exponential_histogram", "summary"):
        point["count"] = row["count_str"]
        _optional_double(point, "sum", row["sum"])
    if kind in ("histogram", "exponential_histogram"):
        _optional_double(point, "min", row["min"])
        _optional_double(point, "max", row["max"])
    if kind == "histogram":
        point["bucketCounts"] = row["bucket_counts_str"]
        point["explicitBounds"] = [double_json(b) for b in row["explicit_bounds"]]
    if kind == "exponential_histogram":
        point["scale"] = row["scale"]
        point["zeroCount"] = row["zero_count_str"]
        point["zeroThreshold"] = double_json(row["zero_threshold"])
        point["positive"] = {"offset": row["positive_offset"], "bucketCounts": row["positive_str"]}
        point["negative"] = {"offset": row["negative_offset"], "bucketCounts": row["negative_str"]}
    if kind == "summary":
        point["quantileValues"] = [
            {"quantile": double_json(q), "value": double_json(v)}
            for q, v in zip(row["q_quantile"], row["q_value"], strict=True)
        ]
    else:
        point["exemplars"] = _exemplars(row)
    point.update(resource_and_scope(row))
    return point


def list_metric_points(tenant_id: str, query: MetricQuery) -> list[dict[str, Any]]:
    """Data points in ``start_ns <= time < end_ns``, oldest first."""
    q = time_range(
        select("metric_points", tenant_id, POINT_COLUMNS), "timestamp", query.start_ns, query.end_ns
    )
    if query.name is not None:
        q = q.filter("metric_name = {name:String}", name=query.name)
    if query.service is not None:
        q = q.filter("service_name = {service:String}", service=query.service)
    limit = max(1, min(int(query.limit), MAX_LIMIT))
    sql, params = q.ordered("metric_name, timestamp").limited(limit).sql()
    return [point_json(row) for row in get_backend().query(sql, params).as_dicts()]


def list_metric_names(tenant_id: str, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    """One entry per metric name: type, description, unit and the number of points in the range."""
    q = time_range(
        select(
            "metric_points",
            tenant_id,
            [
                "metric_name",
                "toString(any(type)) AS type_name",
                "any(metric_description) AS description",
                "any(metric_unit) AS unit",
                "count() AS points",
                "groupUniqArray(service_name) AS services",
            ],
        ),
        "timestamp",
        start_ns,
        end_ns,
    )
    sql, params = q.grouped("metric_name").ordered("metric_name").sql()
    return [
        {
            "name": r["metric_name"],
            "type": _JSON_TYPES[r["type_name"]],
            "description": r["description"],
            "unit": r["unit"],
            "points": r["points"],
            "services": sorted(s for s in r["services"] if s),
        }
        for r in get_backend().query(sql, params).as_dicts()
    ]


MAX_LABEL_VALUES = 1000


def metric_labels(
    tenant_id: str, start_ns: int, end_ns: int, name: str | None = None, label: str | None = None
) -> dict[str, list[str]]:
    """Label names of the points in ``[start_ns, end_ns)`` (data point and resource attributes with string
    values), each with up to ``MAX_LABEL_VALUES`` of its values, sorted; only ``name``'s points and only
    ``label`` when given. One query serves both the label list and a label's values (what query editors
    and Grafana ask for)."""
    pairs = (
        "arrayJoin(arrayConcat("
        "arrayZip(mapKeys(attributes), mapValues(attributes)), "
        "arrayZip(mapKeys(resource_attributes), mapValues(resource_attributes))"
        ")) AS label_pair"
    )
    inner = time_range(select("metric_points", tenant_id, [pairs]), "timestamp", start_ns, end_ns)
    if name is not None:
        inner = inner.filter("metric_name = {name:String}", name=name)
    if label is not None:
        inner = inner.filter(
            "mapContains(attributes, {label:String}) OR mapContains(resource_attributes, {label:String})",
            label=label,
        )
    inner_sql, params = inner.sql()
    where = "WHERE label = {label:String}\n" if label is not None else ""
    sql = (
        f"SELECT tupleElement(label_pair, 1) AS label, "
        f"arraySort(groupUniqArray({MAX_LABEL_VALUES})(tupleElement(label_pair, 2))) AS label_values\n"
        f"FROM (\n{inner_sql}\n)\n{where}GROUP BY label\nORDER BY label"
    )
    return {str(key): list(values) for key, values in get_backend().query(sql, params).rows}
