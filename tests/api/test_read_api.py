"""The read API against real data in the embedded engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tenants import logic
from tests.api.conftest import NS, TenantData

pytestmark = pytest.mark.django_db


def service_names(response: Any) -> list[str]:
    return [s["service"] for s in response.json()["services"]]


def test_trace_returns_every_span_in_start_order(tenant_a: TenantData):
    response = tenant_a.client().get(f"/api/v1/traces/{tenant_a.trace_id.upper()}")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["traceId"] == tenant_a.trace_id
    assert [s["name"] for s in body["spans"]] == ["GET /checkout", "SELECT orders"]
    assert {s["traceId"] for s in body["spans"]} == {tenant_a.trace_id}
    assert body["spans"][0]["serviceName"] == "checkout"
    assert body["spans"][1]["parentSpanId"] == "00000000000000a1"


def test_trace_not_found_and_malformed(tenant_a: TenantData):
    client = tenant_a.client()
    missing = client.get("/api/v1/traces/" + "0" * 31 + "1")
    assert missing.status_code == 404
    assert "no spans for trace" in missing.json()["error"]
    bad = client.get("/api/v1/traces/not-a-trace")
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("trace_id: 'not-a-trace' is not a trace id")


def test_tenant_isolation(tenant_a: TenantData, tenant_b: TenantData):
    b = tenant_b.client()
    assert b.get(f"/api/v1/traces/{tenant_a.trace_id}").status_code == 404
    assert service_names(b.get("/api/v1/services")) == ["billing"]
    records = b.get("/api/v1/logs").json()["records"]
    assert records
    assert {r["serviceName"] for r in records} == {"billing"}
    assert b.get("/api/v1/logs", {"trace_id": tenant_a.trace_id}).json()["records"] == []
    assert b.get("/api/v1/metrics", {"name": "checkout.queue.depth"}).json() == {"points": []}
    names = [m["name"] for m in b.get("/api/v1/metrics/names").json()["metrics"]]
    assert names == ["billing.queue.depth"]
    assert service_names(tenant_a.client().get("/api/v1/services")) == ["checkout"]


def test_tenant_parameter_cannot_switch_tenant(tenant_a: TenantData, tenant_b: TenantData):
    response = tenant_b.client().get("/api/v1/services", {"tenant": tenant_a.name})
    assert response.status_code == 403
    assert "belongs to tenant tenant-b" in response.json()["error"]
    assert tenant_b.client().get("/api/v1/services", {"tenant": "tenant-b"}).status_code == 200


def test_services_time_range(tenant_a: TenantData):
    client = tenant_a.client()
    start = tenant_a.base_ns / NS - 60
    assert service_names(client.get("/api/v1/services", {"start": start})) == ["checkout"]
    old = {"start": "2001-01-01T00:00:00Z", "end": "2001-01-02T00:00:00Z"}
    assert service_names(client.get("/api/v1/services", old)) == []


def test_logs_filters_and_pagination(tenant_a: TenantData):
    client = tenant_a.client()
    records = client.get("/api/v1/logs").json()["records"]
    assert [r["severityText"] for r in records] == ["ERROR", "WARN", "INFO"]  # newest first
    assert records[0]["body"] == {"stringValue": "checkout payment failed"}

    def texts(**params: str) -> list[str]:
        response = client.get("/api/v1/logs", params)
        assert response.status_code == 200, response.json()
        return [r["severityText"] for r in response.json()["records"]]

    assert texts(severity="warn") == ["ERROR", "WARN"]
    assert texts(severity="17") == ["ERROR"]
    assert texts(severity="ERROR2") == []
    assert texts(text="slow") == ["WARN"]
    assert texts(trace_id=tenant_a.trace_id) == ["ERROR", "WARN"]
    assert texts(service="billing") == []

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/logs", params).json()
        seen += [r["severityText"] for r in page["records"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["ERROR", "WARN", "INFO"]


def test_metrics_points_and_names(tenant_a: TenantData):
    client = tenant_a.client()
    points = client.get("/api/v1/metrics", {"name": "checkout.queue.depth"}).json()["points"]
    assert sorted(p["asDouble"] for p in points) == [1.5, 2.5]
    assert {p["type"] for p in points} == {"gauge"}
    assert client.get("/api/v1/metrics", {"name": "checkout.queue.depth", "limit": "1"}).json()["points"]
    assert len(client.get("/api/v1/metrics", {"limit": 1}).json()["points"]) == 1
    names = client.get("/api/v1/metrics/names").json()["metrics"]
    assert [m["name"] for m in names] == ["checkout.queue.depth"]


@pytest.mark.parametrize(
    ("url", "params", "message"),
    [
        ("/api/v1/services", {"start": "yesterday"}, "start: 'yesterday' is not a time; use RFC 3339"),
        ("/api/v1/services", {"end": "1738324800000"}, "end: '1738324800000' looks like milliseconds"),
        ("/api/v1/services", {"start": "1700000100", "end": "1700000000"}, "end: is before start"),
        ("/api/v1/logs", {"severity": "LOUD"}, "severity: 'LOUD' is not a severity"),
        ("/api/v1/logs", {"severity": "25"}, "severity: '25' is out of range"),
        ("/api/v1/logs", {"limit": "0"}, "limit: "),
        ("/api/v1/logs", {"limit": "many"}, "limit: "),
        ("/api/v1/logs", {"trace_id": "abc"}, "trace_id: 'abc' is not a trace id"),
        ("/api/v1/logs", {"servce": "x"}, "servce: unknown parameter; this endpoint accepts"),
        ("/api/v1/metrics", {"limit": "100000"}, "limit: "),
        ("/api/v1/logs", {"cursor": "not-a-cursor"}, "cursor: "),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(tenant_a: TenantData, url, params, message):
    response = tenant_a.client().get(url, params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"].startswith(message)


def test_times_accept_rfc3339_and_unix_seconds(tenant_a: TenantData):
    client = tenant_a.client()
    start_s = (tenant_a.base_ns - 60 * NS) / NS
    end_s = (tenant_a.base_ns + 60 * NS) / NS

    as_rfc = datetime.fromtimestamp(start_s, UTC).isoformat().replace("+00:00", "Z")
    as_offset = datetime.fromtimestamp(end_s, timezone(timedelta(hours=2))).isoformat()
    pairs = [(str(start_s), str(end_s)), (f"{start_s:.3f}", str(int(end_s) + 1)), (as_rfc, as_offset)]
    for start, end in pairs:
        response = client.get("/api/v1/services", {"start": start, "end": end})
        assert service_names(response) == ["checkout"], (start, end)


def test_auth_errors_on_the_api(tenant_a: TenantData):
    anonymous = APIClient()
    response = anonymous.get("/api/v1/services")
    assert response.status_code == 401
    assert "Authorization: Bearer olly_api_" in response.json()["error"]

    ingest = logic.issue_ingest_key(tenant_a.tenant_id)
    anonymous.credentials(HTTP_AUTHORIZATION=f"Bearer {ingest.raw}")
    response = anonymous.get("/api/v1/services")
    assert response.status_code == 401
    assert response.json()["error"] == "this is an ingest key; the API needs an API key (olly_api_…)"

    logic.revoke_key(tenant_a.api_key)
    response = tenant_a.client().get("/api/v1/logs")
    assert response.status_code == 401
    assert "was revoked on" in response.json()["error"]


def test_key_without_read_scope_is_forbidden(tenant_a: TenantData):
    writer = logic.issue_api_key(tenant_a.tenant_id, "writer", ("write",))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {writer.raw}")
    response = client.get("/api/v1/services")
    assert response.status_code == 403
    assert "lacks the 'read' scope" in response.json()["error"]
    admin = logic.issue_api_key(tenant_a.tenant_id, "admin", ("admin",))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin.raw}")
    assert client.get("/api/v1/services").status_code == 200


def test_session_users_pick_their_tenant(tenant_a: TenantData, tenant_b: TenantData):
    user = get_user_model().objects.create_user("alice")
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/services").status_code == 403
    logic.set_membership(tenant_a.tenant_id, user, "viewer")
    assert service_names(client.get("/api/v1/services")) == ["checkout"]
    logic.set_membership(tenant_b.tenant_id, user, "viewer")
    ambiguous = client.get("/api/v1/services")
    assert ambiguous.status_code == 400
    assert "add ?tenant=<name>" in ambiguous.json()["error"]
    assert service_names(client.get("/api/v1/services", {"tenant": "tenant-b"})) == ["billing"]


def test_schema_documents_the_parameters(db: None):
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    log_params = {p["name"] for p in paths["/api/v1/logs"]["get"]["parameters"]}
    assert {"start", "end", "service", "severity", "text", "trace_id", "limit", "cursor"} <= log_params
    metric_params = {p["name"] for p in paths["/api/v1/metrics"]["get"]["parameters"]}
    assert {"name", "service", "start", "end", "limit"} <= metric_params
    assert "/api/v1/traces/{trace_id}" in paths
    assert "/api/v1/metrics/names" in paths
