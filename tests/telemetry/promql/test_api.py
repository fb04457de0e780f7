"""The Prometheus HTTP API: auth and tenants, parameters (GET and form POST), step alignment, errors in
Prometheus's format naming what is unsupported, metadata, and what delta temporality gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from rest_framework.test import APIClient

from bench.promql import build_dataset
from ollystack.clickhouse import Signal
from tenants import logic

pytestmark = pytest.mark.django_db

START_S = 1_700_000_000
BASE = "/prometheus/api/v1"


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    client: APIClient
    jobs: set[str]
    end_s: float


def _tenant(insert_requests: Callable[..., int], name: str, services: int, seed: int) -> Tenant:
    created = logic.create_tenant(name)
    key = logic.issue_api_key(created.tenant_id, "tests").raw
    dataset = build_dataset(START_S, hours=0.25, services=services, routes=1, seed=seed)
    if name == "tenant-b":  # other service names than tenant A's
        for request in dataset.requests:
            for attribute in request.resource_metrics[0].resource.attributes:
                if attribute.key == "service.name":
                    attribute.value.string_value = "b-" + attribute.value.string_value
    insert_requests(Signal.METRICS, *[(created.tenant_id, r) for r in dataset.requests])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    jobs = {s.labels["job"] for s in dataset.series} if name != "tenant-b" else set()
    return Tenant(created.tenant_id, client, jobs, dataset.end_ms / 1000)


@pytest.fixture
def tenant_a(insert_requests: Callable[..., int]) -> Tenant:
    return _tenant(insert_requests, "tenant-a", 2, 1)


@pytest.fixture
def tenant_b(insert_requests: Callable[..., int]) -> Tenant:
    return _tenant(insert_requests, "tenant-b", 3, 2)


def _get(client: APIClient, path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    response = client.get(f"{BASE}/{path}", params)
    return response.status_code, response.json()


def test_without_credentials_the_answer_is_401_in_prometheus_format(db: None) -> None:
    response = APIClient().get(f"{BASE}/query", {"query": "up"})
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == "error"
    assert body["errorType"] == "unauthorized"
    assert "Authorization: Bearer" in body["error"]


def test_instant_query_get_and_form_post(tenant_a: Tenant) -> None:
    status, body = _get(tenant_a.client, "query", query="sum by (job) (queue_depth)", time=tenant_a.end_s)
    assert status == 200, body
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "vector"
    assert {r["metric"]["job"] for r in body["data"]["result"]} == tenant_a.jobs
    posted = tenant_a.client.post(
        f"{BASE}/query",
        {"query": "sum by (job) (queue_depth)", "time": str(tenant_a.end_s)},
        format="multipart",
    )
    form = tenant_a.client.generic(
        "POST",
        f"{BASE}/query",
        f"query=sum+by+%28job%29+%28queue_depth%29&time={tenant_a.end_s}",
        content_type="application/x-www-form-urlencoded",
    )
    assert posted.json() == body
    assert form.json() == body


def test_time_as_rfc3339(tenant_a: Tenant) -> None:
    status, body = _get(tenant_a.client, "query", query="count(queue_depth)", time="2023-11-14T22:28:20Z")
    assert status == 200, body
    assert body["data"]["result"][0]["value"][0] == 1_700_000_900


def test_range_steps_start_at_start_and_are_not_realigned(tenant_a: Tenant) -> None:
    start = START_S + 307
    status, body = _get(
        tenant_a.client, "query_range", query="count(queue_depth)", start=start, end=start + 300, step="1m"
    )
    assert status == 200, body
    assert [t for t, _ in body["data"]["result"][0]["values"]] == [start + 60 * i for i in range(6)]
    status, body = _get(
        tenant_a.client, "query_range", query="count(queue_depth)", start=start, end=start + 1, step="0.25"
    )
    assert [t for t, _ in body["data"]["result"][0]["values"]] == [start + 0.25 * i for i in range(5)]


def test_a_scalar_range_query_is_a_matrix(tenant_a: Tenant) -> None:
    status, body = _get(
        tenant_a.client, "query_range", query="1 + 1", start=START_S, end=START_S + 30, step=15
    )
    assert status == 200
    assert body["data"] == {
        "resultType": "matrix",
        "result": [{"metric": {}, "values": [[START_S, "2"], [START_S + 15, "2"], [START_S + 30, "2"]]}],
    }
    status, body = _get(tenant_a.client, "query", query="2 ^ 0.5", time=START_S)
    assert body["data"] == {"resultType": "scalar", "result": [START_S, "1.4142135623730951"]}


@pytest.mark.parametrize(
    ("path", "params", "status", "error_type", "message"),
    [
        ("query", {"query": "sum(rate(x[5m]"}, 400, "bad_data", "parse error"),
        ("query", {"query": ""}, 400, "bad_data", '"query"'),
        ("query", {"query": "rate(x)"}, 400, "bad_data", "expected type matrix"),
        (
            "query",
            {"query": "holt_winters(x[5m], 0.5, 0.5)"},
            422,
            "execution",
            "function holt_winters is not",
        ),
        ("query", {"query": "max_over_time(rate(x[1m])[5m:1m])"}, 422, "execution", "subqueries are not"),
        ("query", {"query": 'count_values("v", x)'}, 422, "execution", "aggregation count_values is not"),
        ("query", {"query": "timestamp(x)"}, 422, "execution", "function timestamp is not"),
        ("query", {"query": "x", "time": "yesterday"}, 400, "bad_data", '"time"'),
        ("query_range", {"query": "x", "start": 1, "end": 100000, "step": 1}, 400, "bad_data", "11,000"),
        ("query_range", {"query": "x", "start": 1, "end": 100}, 400, "bad_data", '"step"'),
        ("query_range", {"query": "x", "start": 100, "end": 1, "step": 1}, 400, "bad_data", "end timestamp"),
        ("query_range", {"query": "x", "start": 1, "end": 10, "step": "-1"}, 400, "bad_data", "step"),
        (
            "query_range",
            {"query": "x[5m]", "start": 1, "end": 10, "step": 1},
            400,
            "bad_data",
            "range vector",
        ),
        ("query", {"query": "1 > 2"}, 400, "bad_data", "BOOL"),
        ("series", {}, 400, "bad_data", "match[]"),
        ("series", {"match[]": "sum(x)"}, 400, "bad_data", "match[]"),
        ("label/1abc/values", {}, 400, "bad_data", "label name"),
    ],
)
def test_errors_in_prometheus_format(
    tenant_a: Tenant, path: str, params: dict[str, Any], status: int, error_type: str, message: str
) -> None:
    got, body = _get(tenant_a.client, path, **params)
    assert (got, body["status"], body["errorType"]) == (status, "error", error_type), body
    assert message in body["error"]


def test_many_to_many_matching_is_an_execution_error(tenant_a: Tenant) -> None:
    status, body = _get(
        tenant_a.client,
        "query",
        query="http_server_requests_total + on (job) http_server_requests_total",
        time=tenant_a.end_s,
    )
    assert status == 422
    assert body["errorType"] == "execution"
    assert "many-to-many matching not allowed" in body["error"] or "multiple matches" in body["error"]


def test_each_tenant_sees_only_its_own_series(tenant_a: Tenant, tenant_b: Tenant) -> None:
    window = {"start": START_S, "end": tenant_a.end_s}
    for client, own in ((tenant_a.client, tenant_a.jobs), (tenant_b.client, {"b-"})):
        _, body = _get(client, "query", query="queue_depth", time=tenant_a.end_s)
        jobs = {r["metric"]["job"] for r in body["data"]["result"]}
        _, series = _get(client, "series", **{"match[]": "queue_depth"}, **window)
        _, values = _get(client, "label/job/values", **window)
        for seen in (jobs, {s["job"] for s in series["data"]}, set(values["data"])):
            assert seen
            if own == {"b-"}:
                assert all("b-" in j for j in seen), seen
            else:
                assert seen == own
                assert not any("b-" in j for j in seen)


def test_labels_values_series_and_metadata(tenant_a: Tenant) -> None:
    window = {"start": START_S, "end": tenant_a.end_s}
    _, labels = _get(tenant_a.client, "labels", **window)
    assert {"__name__", "job", "instance", "le", "http_route", "http_response_status_code"} <= set(
        labels["data"]
    )
    _, names = _get(tenant_a.client, "label/__name__/values")
    assert "http_server_request_duration_seconds_bucket" in names["data"]
    assert "http_server_requests_total" in names["data"]
    _, metadata = _get(tenant_a.client, "metadata")
    assert metadata["data"]["http_server_requests_total"] == [
        {"type": "counter", "help": "Requests", "unit": "{request}"}
    ]
    assert metadata["data"]["http_server_request_duration_seconds"][0]["type"] == "histogram"
    assert metadata["data"]["db_client_connections_usage"][0]["type"] == "gauge"
    _, one = _get(tenant_a.client, "metadata", metric="queue_depth")
    assert list(one["data"]) == ["queue_depth"]
    _, info = _get(tenant_a.client, "status/buildinfo")
    assert info["data"]["version"].startswith("2.")


def test_delta_temporality_is_refused_by_name(tenant_a: Tenant, insert_requests: Callable[..., int]) -> None:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "lambda"
    metric = rm.scope_metrics.add().metrics.add(name="invocations", unit="{call}")
    metric.sum.aggregation_temporality, metric.sum.is_monotonic = 1, True
    metric.sum.data_points.add(time_unix_nano=(START_S + 60) * 10**9, as_int=3)
    insert_requests(Signal.METRICS, (tenant_a.tenant_id, request))
    status, body = _get(tenant_a.client, "query", query="invocations", time=START_S + 60)
    assert status == 422
    assert "delta temporality" in body["error"]
    status, body = _get(tenant_a.client, "query", query='{job="lambda"}', time=START_S + 60)
    assert status == 200
    assert body["data"]["result"] == []
