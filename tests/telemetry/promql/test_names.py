"""OTel -> Prometheus names (the compatibility specification's rules), in Python and in SQL alike."""

from __future__ import annotations

import pytest

from ollystack.clickhouse import Backend
from ollystack.telemetry.promql.names import (
    BUCKET,
    COUNT,
    QUANTILE,
    SUM,
    VALUE,
    Family,
    job,
    label_key_sql,
    label_name,
    metric_name,
)


@pytest.mark.parametrize(
    ("name", "unit", "kind", "monotonic", "cumulative", "expected"),
    [
        (
            "http.server.request.duration",
            "s",
            "histogram",
            False,
            True,
            "http_server_request_duration_seconds",
        ),
        ("http.server.duration", "ms", "histogram", False, True, "http_server_duration_milliseconds"),
        ("http.server.requests", "{request}", "sum", True, True, "http_server_requests_total"),
        ("requests_total", "", "sum", True, True, "requests_total"),
        ("system.cpu.utilization", "1", "gauge", False, True, "system_cpu_utilization_ratio"),
        ("errors", "1", "sum", True, True, "errors_total"),
        ("process.memory.usage", "By", "sum", False, True, "process_memory_usage_bytes"),
        ("network.io", "By/s", "gauge", False, True, "network_io_bytes_per_second"),
        ("latency.seconds", "s", "gauge", False, True, "latency_seconds"),
        ("2xx.responses", "", "gauge", False, True, "_2xx_responses"),
        ("odd--name..x", "", "gauge", False, True, "odd_name_x"),
        ("job:requests:rate5m", "", "gauge", False, True, "job:requests:rate5m"),
        ("temperature", "Cel", "gauge", False, True, "temperature_celsius"),
        ("queue.size", "{item}", "gauge", False, True, "queue_size"),
        ("custom", "widgets", "gauge", False, True, "custom_widgets"),
        ("delta.requests", "", "sum", True, False, "delta_requests"),
    ],
)
def test_metric_names(
    name: str, unit: str, kind: str, monotonic: bool, cumulative: bool, expected: str
) -> None:
    assert metric_name(name, unit, kind, monotonic, cumulative) == expected


KEYS = [
    "http.route",
    "service.name",
    "k8s.pod.name",
    "1st",
    "_private",
    "__reserved",
    "a-b c",
    "ünïcode",
    "ok",
]


def test_label_names() -> None:
    assert [label_name(k) for k in KEYS] == [
        "http_route",
        "service_name",
        "k8s_pod_name",
        "key_1st",
        "key_private",
        "__reserved",
        "a_b_c",
        "key_n_code",
        "ok",
    ]


def test_label_names_in_sql_equal_python(clickhouse: Backend) -> None:
    sql = f"SELECT {label_key_sql('k')} FROM (SELECT arrayJoin({{keys:Array(String)}}) AS k)"
    got = [row[0] for row in clickhouse.query(sql, {"keys": KEYS}).rows]
    assert got == [label_name(k) for k in KEYS]


def test_job_label() -> None:
    assert job("checkout", "shop") == "shop/checkout"
    assert job("checkout") == "checkout"
    assert job("", "shop") == ""


def test_families_expose_prometheus_series() -> None:
    histogram = Family("http.server.duration", "histogram", "ms", "", False, True)
    assert histogram.series_names == {
        "http_server_duration_milliseconds_bucket": BUCKET,
        "http_server_duration_milliseconds_sum": SUM,
        "http_server_duration_milliseconds_count": COUNT,
    }
    assert histogram.prometheus_type == "histogram"
    summary = Family("gc.pause", "summary", "s", "", False, True)
    assert summary.series_names == {
        "gc_pause_seconds": QUANTILE,
        "gc_pause_seconds_sum": SUM,
        "gc_pause_seconds_count": COUNT,
    }
    counter = Family("http.server.requests", "sum", "{request}", "", True, True)
    assert counter.series_names == {"http_server_requests_total": VALUE}
    assert counter.prometheus_type == "counter"
    assert Family("conns", "sum", "", "", False, True).prometheus_type == "gauge"
    assert Family("reqs", "sum", "", "", True, False).delta
    assert Family("latency", "histogram", "", "", False, False).delta
    assert not Family("g", "gauge", "", "", False, True).delta
