"""OllyStack's PromQL answers equal a real Prometheus's on the same samples.

The samples (bench.promql.build_dataset: gauges, counters with a reset, histograms, a series that stops,
integer attributes, jittered timestamps, some exactly on a step) go into OllyStack as OTLP metrics through the
segment insert, and into Prometheus 2.42 (Debian package) as OpenMetrics backfilled with ``promtool tsdb
create-blocks-from openmetrics``. The Prometheus names in the OpenMetrics text are spelled out by hand in the
dataset, so a mapping mistake is a difference too.

Every query runs as instant queries at several times and as range queries, through the HTTP API of both; the
results must have the same type, the same label sets, the same timestamps, and values within 1e-9 (relative
or absolute; 1e-6 for the least-squares and standard-deviation functions, whose float summation order
differs).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from bench.promql import PROMETHEUS, PROMTOOL, Dataset, Prometheus, build_dataset
from ollystack.clickhouse import Backend, Signal
from ollystack.clickhouse.otlp import frame

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

START_S = 1_700_000_000
LOOSE = ("deriv", "predict_linear", "stddev", "stdvar")

QUERIES = [
    # selectors, matchers, lookback, staleness of a series that stops
    "queue_depth",
    'queue_depth{queue="emails"}',
    'queue_depth{queue!="emails"}',
    'queue_depth{job=~"shop/.*"}',
    'queue_depth{job!~"shop/.*", queue=~"ord.*"}',
    '{__name__=~"queue_depth|process_cpu_utilization_ratio", job="payment"}',
    "process_cpu_utilization_ratio",
    "db_client_connections_usage",
    'http_server_requests_total{http_response_status_code="500"}',
    'http_server_request_duration_seconds_bucket{le="0.1"}',
    "queue_depth offset 7m",
    # counters
    "rate(http_server_requests_total[5m])",
    "rate(http_server_requests_total[1m])",
    "irate(http_server_requests_total[2m])",
    "increase(http_server_requests_total[10m])",
    "rate(http_server_requests_total[5m] offset 10m)",
    "resets(http_server_requests_total[30m])",
    "delta(queue_depth[10m])",
    "idelta(queue_depth[2m])",
    # aggregations
    "sum(rate(http_server_requests_total[5m]))",
    "sum by (job) (rate(http_server_requests_total[5m]))",
    "sum without (instance, http_route) (rate(http_server_requests_total[5m]))",
    "avg by (queue) (queue_depth)",
    "min by (job) (queue_depth)",
    "max(queue_depth)",
    "count by (http_response_status_code) (http_server_requests_total)",
    "group by (job) (queue_depth)",
    "stddev by (job) (queue_depth)",
    "quantile(0.9, queue_depth)",
    "topk(2, queue_depth)",
    "bottomk(1, sum by (job) (rate(http_server_requests_total[5m])))",
    # histograms
    "histogram_quantile(0.95, sum by (le, job) (rate(http_server_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(http_server_request_duration_seconds_bucket[10m]))",
    "histogram_quantile(0.99, http_server_request_duration_seconds_bucket)",
    "rate(http_server_request_duration_seconds_sum[5m])"
    " / rate(http_server_request_duration_seconds_count[5m])",
    # binary operators and vector matching
    'sum by (job) (rate(http_server_requests_total{http_response_status_code="500"}[5m]))'
    " / sum by (job) (rate(http_server_requests_total[5m]))",
    "queue_depth > 20",
    "queue_depth > bool 20",
    "2 * queue_depth + 1",
    "queue_depth / on (job, instance) group_left process_cpu_utilization_ratio",
    "rate(http_server_requests_total[5m])"
    ' * on (job, instance) group_left (queue) queue_depth{queue="orders"}',
    "process_cpu_utilization_ratio > 0.5 and on (job) db_client_connections_usage > 5",
    'queue_depth unless queue_depth{queue="orders"}',
    'sum(queue_depth{queue="nope"}) or vector(0)',
    "queue_depth - ignoring (queue, state) group_left db_client_connections_usage",
    # functions over time and of values
    "max_over_time(queue_depth[10m])",
    "min_over_time(queue_depth[10m])",
    "avg_over_time(queue_depth[10m])",
    "sum_over_time(queue_depth[3m])",
    "count_over_time(queue_depth[10m])",
    "last_over_time(queue_depth[10m])",
    "quantile_over_time(0.75, queue_depth[10m])",
    "stddev_over_time(queue_depth[10m])",
    "changes(db_client_connections_usage[10m])",
    "deriv(queue_depth[10m])",
    "predict_linear(queue_depth[10m], 600)",
    "abs(-queue_depth)",
    "clamp_max(queue_depth, 20)",
    "round(queue_depth, 5)",
    'label_replace(queue_depth, "svc", "$1", "job", "(?:shop/)?(.*)")',
    'absent(nonexistent_metric{job="x"})',
    "scalar(sum(process_cpu_utilization_ratio))",
]


@dataclass(frozen=True)
class Systems:
    dataset: Dataset
    prometheus: Prometheus
    client: APIClient


@pytest.fixture(scope="module")
def systems(
    clickhouse: Backend,
    tmp_path_factory: pytest.TempPathFactory,
    django_db_setup: None,
    django_db_blocker: Any,
) -> Iterator[Systems]:
    for binary in (PROMETHEUS, PROMTOOL):
        if not Path(binary).exists():
            pytest.fail(
                f"{binary} is missing: this test compares with a real Prometheus; install it with "
                "`apt-get install -y prometheus` (`make test` installs it)"
            )
    from tenants import logic
    from tenants.models import Tenant

    dataset = build_dataset(START_S, hours=1.5, services=3, routes=2)
    with django_db_blocker.unblock():
        tenant = logic.create_tenant(f"promql-{uuid.uuid4().hex[:8]}")
        key = logic.issue_api_key(tenant.tenant_id, "tests").raw
    directory = tmp_path_factory.mktemp("promql")
    segment = directory / "metrics.seg"
    segment.write_bytes(b"".join(frame(tenant.tenant_id, r.SerializeToString()) for r in dataset.requests))
    assert clickhouse.insert_otlp_segment(Signal.METRICS, segment, uuid.uuid4().hex) > 0
    prometheus = Prometheus(directory, dataset)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    try:
        yield Systems(dataset, prometheus, client)
    finally:
        prometheus.stop()
        with django_db_blocker.unblock():  # later tests count the tenants
            Tenant.objects.filter(pk=tenant.tenant_id).delete()


def _ours(client: APIClient, path: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.get(f"/prometheus/api/v1/{path}", params)
    body = response.json()
    assert response.status_code == 200, body
    return dict(body)


def _number(text: str) -> float:
    return float(text.replace("Inf", "inf"))


def _close(a: str, b: str, rel: float) -> bool:
    x, y = _number(a), _number(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return math.isclose(x, y, rel_tol=rel, abs_tol=rel)


def _by_labels(result: list[dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], Any]:
    out = {}
    for item in result:
        key = tuple(sorted(item["metric"].items()))
        assert key not in out, f"duplicate series {key}"
        out[key] = item.get("values", [item.get("value")])
    return out


def assert_same(query: str, ours: dict[str, Any], theirs: dict[str, Any]) -> int:
    """Equal answers; returns the number of points compared."""
    assert theirs["status"] == "success", theirs
    ours_data, their_data = ours["data"], theirs["data"]
    assert ours_data["resultType"] == their_data["resultType"], (query, ours_data, their_data)
    rel = 1e-6 if any(word in query for word in LOOSE) else 1e-9
    if their_data["resultType"] == "scalar":
        assert ours_data["result"][0] == their_data["result"][0]
        assert _close(ours_data["result"][1], their_data["result"][1], rel), (query, ours_data, their_data)
        return 1
    mine, prom = _by_labels(ours_data["result"]), _by_labels(their_data["result"])
    assert set(mine) == set(prom), (
        f"{query}: label sets differ\nonly OllyStack: {sorted(set(mine) - set(prom))[:5]}\n"
        f"only Prometheus: {sorted(set(prom) - set(mine))[:5]}"
    )
    for key, points in prom.items():
        got = mine[key]
        assert [p[0] for p in got] == [p[0] for p in points], f"{query} {key}: timestamps differ"
        for (t, want), (_, have) in zip(points, got, strict=True):
            assert _close(have, want, rel), f"{query} {key} at {t}: OllyStack {have}, Prometheus {want}"
    return sum(len(points) for points in prom.values())


def _instant_times(ds: Dataset) -> list[float]:
    end = ds.end_ms / 1000
    return [end, end - 571.5, ds.start_ms / 1000 + 2700, ds.start_ms / 1000 + 150, end + 400]


@pytest.mark.parametrize("query", QUERIES)
def test_instant_query_equals_prometheus(systems: Systems, query: str) -> None:
    compared = 0
    for at in _instant_times(systems.dataset):
        params = {"query": query, "time": at}
        compared += assert_same(
            f"{query} @ {at}", _ours(systems.client, "query", params), systems.prometheus.get("query", params)
        )
    assert compared >= 2, f"{query}: Prometheus answered (almost) nothing; the comparison proves little"


@pytest.mark.parametrize("query", QUERIES)
def test_range_query_equals_prometheus(systems: Systems, query: str) -> None:
    ds = systems.dataset
    start, end = ds.start_ms / 1000, ds.end_ms / 1000
    compared = 0
    for params in (
        {"query": query, "start": start + 60, "end": end + 600, "step": 60},
        {"query": query, "start": start + 1234.5, "end": start + 2500, "step": "17s"},
    ):
        compared += assert_same(
            f"{query} {params}",
            _ours(systems.client, "query_range", params),
            systems.prometheus.get("query_range", params),
        )
    assert compared >= 20, f"{query}: Prometheus answered (almost) nothing; the comparison proves little"


@pytest.mark.parametrize(
    "query", ["queue_depth[5m]", 'http_server_requests_total{job="payment"}[2m] offset 1m']
)
def test_range_vector_instant_query_equals_prometheus(systems: Systems, query: str) -> None:
    params = {"query": query, "time": systems.dataset.end_ms / 1000 - 1000}
    compared = assert_same(
        query, _ours(systems.client, "query", params), systems.prometheus.get("query", params)
    )
    assert compared > 10


def test_series_labels_and_values_equal_prometheus(systems: Systems) -> None:
    ds = systems.dataset
    window = {"start": ds.start_ms / 1000, "end": ds.end_ms / 1000}
    for match in ('queue_depth{job=~"shop/.*"}', "http_server_request_duration_seconds_count"):
        params = {"match[]": match, **window}
        ours, theirs = _ours(systems.client, "series", params), systems.prometheus.get("series", params)
        key = lambda rows: sorted(tuple(sorted(r.items())) for r in rows)  # noqa: E731
        assert key(ours["data"]) == key(theirs["data"]), match
    ours, theirs = _ours(systems.client, "labels", window), systems.prometheus.get("labels", window)
    assert ours["data"] == theirs["data"]
    for name in ("job", "__name__", "le", "http_response_status_code"):
        ours = _ours(systems.client, f"label/{name}/values", window)
        theirs = systems.prometheus.get(f"label/{name}/values", window)
        assert ours["data"] == theirs["data"], name
    params = {"match[]": "queue_depth", **window}
    ours = _ours(systems.client, "label/queue/values", params)
    assert ours["data"] == systems.prometheus.get("label/queue/values", params)["data"]
