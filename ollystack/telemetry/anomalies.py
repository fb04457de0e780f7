"""Metric series behaving unlike their last hour, from the ``metric_anomalies`` view."""

from __future__ import annotations

from dataclasses import dataclass

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import minute_range, select

DEFAULT_THRESHOLD = 3.0


@dataclass(frozen=True)
class Anomaly:
    minute_ns: int
    metric: str
    service: str
    attributes: dict[str, str]
    value: float  # the minute's value (for cumulative counters: its increase over the previous minute)
    mean: float  # of the trailing hour's per-minute values
    stddev: float
    z_score: float


def current_anomalies(
    tenant_id: str, start_ns: int, end_ns: int, threshold: float = DEFAULT_THRESHOLD, limit: int = 100
) -> list[Anomaly]:
    """Series whose |z-score| reached ``threshold`` in the minutes overlapping ``[start_ns, end_ns)``, the
    most abnormal first (one row per series: its most abnormal minute)."""
    query = minute_range(
        select(
            "metric_anomalies FINAL",
            tenant_id,
            [
                "toUnixTimestamp(argMax(minute, abs(z_score))) * 1000000000 AS minute_ns",
                "metric_name",
                "any(service_name)",
                "any(attributes)",
                "argMax(value, abs(z_score))",
                "argMax(mean, abs(z_score))",
                "argMax(stddev, abs(z_score))",
                "argMax(z_score, abs(z_score)) AS z",
            ],
        ),
        "minute",
        start_ns,
        end_ns,
    ).filter("abs(z_score) >= {threshold:Float64}", threshold=float(threshold))
    sql, params = query.grouped("metric_name, series_id").ordered("abs(z) DESC").limited(limit).sql()
    return [
        Anomaly(int(m), metric, svc, dict(attrs), float(v), float(mean), float(sd), float(z))
        for m, metric, svc, attrs, v, mean, sd, z in get_backend().query(sql, params).rows
    ]
