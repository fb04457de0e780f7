"""The RED series and slowest-requests endpoints on known data: exact figures per bucket, rates over the
seconds a bucket covers, 400s that name the parameter, and the tenant boundary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from ollystack.clickhouse import Backend
from ollystack.clickhouse.views import DIGEST_RELATIVE_ERROR
from tenants import logic
from tests.telemetry.test_red_series import HOUR_S, MS, NS, H, Shop, insert, trace_id

pytestmark = pytest.mark.django_db

RANGE = {"start": str(HOUR_S), "end": str(HOUR_S + 600)}  # ten minutes, in 2023: per-minute buckets


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    client: APIClient


def tenant_client(name: str) -> Tenant:
    created = logic.create_tenant(name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {logic.issue_api_key(created.tenant_id, 'tests').raw}")
    return Tenant(created.tenant_id, client)


@pytest.fixture
def shop(clickhouse: Backend, tmp_path: Path) -> Tenant:
    """Minute 0: three checkouts (frontend 100 ms → payments charge 40 ms), the second declined. Minute 5:
    one checkout (300 ms) charged twice (200 and 150 ms), the first charge querying its database."""
    tenant = tenant_client("shop")
    shop = Shop()
    for n in range(3):
        shop.checkout(trace_id(n), H + 10 * NS, 100, [40], fail=n == 1)
    shop.checkout(trace_id(5), H + 310 * NS, 300, [200, 150])
    shop.span("payments", trace_id(5), 20, 10, "SELECT cards", Shop.CLIENT, H + 311 * NS, 250)
    insert(clickhouse, tmp_path, tenant.tenant_id, shop.request)
    return tenant


def get(tenant: Tenant, url: str, **params: Any) -> Any:
    response = tenant.client.get(url, {**RANGE, **params})
    assert response.status_code == 200, response.json()
    return response.json()


def test_every_service_per_minute(shop: Tenant) -> None:
    body = get(shop, "/api/v1/services/series")
    assert body["step"] == 60
    assert body["times"] == [HOUR_S + 60 * i for i in range(10)]
    assert [s["service"] for s in body["services"]] == ["frontend", "payments"]
    front, pay = body["services"]
    assert front["requests"] == [3.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0]
    assert front["request_rate"][0] == pytest.approx(3 / 60)
    assert front["error_rate"][:2] == [0.0, None]  # no requests, no rate
    assert pay["errors"][0] == 1.0
    assert pay["error_rate"][0] == pytest.approx(1 / 3)
    assert pay["requests"][5] == 2.0
    assert front["duration_ns"]["p95"][5] == pytest.approx(300 * MS, rel=DIGEST_RELATIVE_ERROR)
    assert front["duration_ns"]["p95"][1] is None
    assert set(front["duration_ns"]) == {"p50", "p95", "p99"}


def test_a_range_ending_mid_minute_rates_over_the_seconds_covered(shop: Tenant) -> None:
    body = get(shop, "/api/v1/services/series", start=str(HOUR_S), end=str(HOUR_S + 30))
    assert body["times"] == [HOUR_S]
    assert body["services"][0]["request_rate"] == [pytest.approx(3 / 30)]


def test_one_service_in_total_and_per_operation(shop: Tenant) -> None:
    body = get(shop, "/api/v1/services/payments/series")
    assert body["service"] == "payments"
    assert body["total"]["requests"][0] == 3.0
    assert body["total"]["requests"][5] == 2.0
    assert [op["operation"] for op in body["operations"]] == ["charge", "SELECT cards"]
    charge, query = body["operations"]
    assert charge["errors"][0] == 1.0
    assert query["requests"][5] == 1.0
    assert query["duration_ns"]["p95"][5] == pytest.approx(250 * MS, rel=DIGEST_RELATIVE_ERROR)
    assert [op["operation"] for op in get(shop, "/api/v1/services/payments/series", top=1)["operations"]] == [
        "charge"
    ]
    nobody = get(shop, "/api/v1/services/nobody/series")
    assert nobody["total"]["requests"] == [0.0] * 10
    assert nobody["operations"] == []


def test_slowest_requests_link_to_their_traces(shop: Tenant) -> None:
    body = get(shop, "/api/v1/services/payments/slowest", limit=2)
    assert body["service"] == "payments"
    assert body["requests"] == [
        {
            "trace_id": trace_id(5),
            "span_id": "000000000000000a",
            "operation": "charge",
            "start_time_unix_nano": str(H + 310 * NS + MS),
            "duration_ns": 200 * MS,
            "error": False,
        },
        {
            "trace_id": trace_id(0),
            "span_id": "000000000000000a",
            "operation": "charge",
            "start_time_unix_nano": str(H + 10 * NS + MS),
            "duration_ns": 40 * MS,
            "error": False,
        },
    ]


@pytest.mark.parametrize(
    ("url", "params", "field", "words"),
    [
        ("/api/v1/services/payments/series", {"top": "0"}, "top", "greater than or equal to 1"),
        ("/api/v1/services/payments/slowest", {"limit": "5000"}, "limit", "less than or equal to 100"),
        ("/api/v1/services/series", {"step": "60"}, "step", "unknown parameter"),
        ("/api/v1/services/series", {"start": "1700000000000"}, "start", "milliseconds"),
    ],
)
def test_bad_parameters_are_named(
    shop: Tenant, url: str, params: dict[str, str], field: str, words: str
) -> None:
    response = shop.client.get(url, {**RANGE, **params})
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith(f"{field}: "), message
    assert words in message, message


def test_other_tenants_see_nothing(shop: Tenant) -> None:
    other = tenant_client("other")
    assert get(other, "/api/v1/services/series")["services"] == []
    assert get(other, "/api/v1/services/payments/slowest")["requests"] == []
    assert APIClient().get("/api/v1/services/series", RANGE).status_code == 401
