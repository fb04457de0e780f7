"""GET /api/v1/usage: the caller's tenant, its quotas and sampling, and what it used today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from ingest import quotas
from ingest.quotas import LocalQuotaStore, RedisQuotaStore
from tenants import logic
from tenants.models import Role
from tests.ingest.conftest import closed_port
from tests.tenants.conftest import use_quota

pytestmark = pytest.mark.django_db


def api_client(tenant: str, scopes: tuple[str, ...] = ("read",)) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {logic.issue_api_key(tenant, 'tests', scopes).raw}")
    return client


def test_usage_with_an_api_key(quota_store: LocalQuotaStore) -> None:
    created = logic.create_tenant("acme")
    logic.set_tenant_policy(
        "acme",
        logic.TenantPolicy(
            rate_limit_per_second=1000,
            daily_records_cap=10_000,
            trace_sample_rate=0.25,
            trace_slow_threshold_ms=800,
        ),
    )
    logic.create_tenant("other")
    use_quota(quota_store, "acme", 1200, 65_536)
    use_quota(quota_store, "other", 7, 7)

    response = api_client("acme").get("/api/v1/usage")
    assert response.status_code == 200, response.content
    body = response.json()
    today = datetime.now(UTC).date()
    assert body == {
        "tenant": "acme",
        "tenant_id": created.tenant_id,
        "quota": {
            "rate_limit_records_per_second": 1000,
            "rate_limit_burst": 2000,
            "daily_records_cap": 10_000,
            "daily_bytes_cap": None,
        },
        "sampling": {"trace_sample_rate": 0.25, "trace_slow_threshold_ms": 800},
        "usage": {
            "day": today.isoformat(),
            "records": 1200,
            "bytes": 65_536,
            "records_remaining": 8800,
            "bytes_remaining": None,
            "resets_at": (datetime(today.year, today.month, today.day) + timedelta(days=1)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        },
        "usage_error": "",
        "quota_store": "local",
    }


def test_usage_for_a_signed_in_member(quota_store: LocalQuotaStore) -> None:
    logic.create_tenant("acme")
    logic.create_tenant("beta")
    user = get_user_model().objects.create_user("ann")
    logic.set_membership("acme", user, Role.VIEWER)
    logic.set_membership("beta", user, Role.VIEWER)
    use_quota(quota_store, "beta", 3, 30)
    client = APIClient()
    client.force_login(user)

    ambiguous = client.get("/api/v1/usage")
    assert ambiguous.status_code == 400
    assert "add ?tenant=<name>" in ambiguous.json()["error"]
    body = client.get("/api/v1/usage", {"tenant": "beta"}).json()
    assert (body["tenant"], body["usage"]["records"]) == ("beta", 3)


def test_usage_needs_credentials_of_the_tenant(quota_store: LocalQuotaStore) -> None:
    logic.create_tenant("acme")
    logic.create_tenant("other")
    anonymous = APIClient().get("/api/v1/usage")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"].startswith("authentication required")
    foreign = api_client("acme").get("/api/v1/usage", {"tenant": "other"})
    assert foreign.status_code == 403
    assert foreign.json() == {"error": "this API key belongs to tenant acme; it cannot read tenant other"}
    assert api_client("acme", ("write",)).get("/api/v1/usage").status_code == 403
    unknown = api_client("acme").get("/api/v1/usage", {"since": "yesterday"})
    assert unknown.status_code == 400


def test_usage_when_the_quota_store_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quotas, "_store", RedisQuotaStore(f"redis://127.0.0.1:{closed_port()}/0"))
    logic.create_tenant("acme")
    body = api_client("acme").get("/api/v1/usage").json()
    assert body["usage"] is None
    assert body["usage_error"].startswith("the quota store (Redis at redis://127.0.0.1:")
    assert body["quota_store"] == "redis"
    assert body["quota"]["daily_records_cap"] is None


def test_usage_is_in_the_openapi_schema() -> None:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = APIClient()
    client.force_login(user)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/usage"]["get"]
    assert operation["summary"] == "Quotas, sampling and today's usage of your tenant"
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"tenant", "quota", "sampling", "usage", "usage_error", "quota_store"} <= set(
        component["properties"]
    )
