"""GET /api/v1/logs/histogram: the log search's filters, counts per severity and bucket, 400s that name the
parameter, the tenant's own records only, and its OpenAPI description."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.api.conftest import NS, TenantData

pytestmark = pytest.mark.django_db

URL = "/api/v1/logs/histogram"


def window(data: TenantData) -> dict[str, str]:
    # the records are 1-3 s after base; a 10-minute range from the minute before
    start = data.base_ns // NS // 60 * 60 - 60
    return {"start": str(start), "end": str(start + 600)}


def get(data: TenantData, **params: Any) -> Any:
    response = data.client().get(URL, {**window(data), **params})
    assert response.status_code == 200, response.content
    return response.json()


def totals(body: dict[str, Any]) -> dict[str, int]:
    return {s["severity"]: sum(s["counts"]) for s in body["series"]}


def test_counts_per_severity_from_the_view(tenant_a: TenantData) -> None:
    body = get(tenant_a, step="60")
    assert body["source"] == "log_volume_1m"
    assert body["step_seconds"] == 60
    assert len(body["times"]) == 10
    assert body["times"][1] - body["times"][0] == 60
    assert totals(body) == {"INFO": 1, "WARN": 1, "ERROR": 1}
    assert [s["severity"] for s in body["series"]] == ["INFO", "WARN", "ERROR"]
    assert all(len(s["counts"]) == 10 for s in body["series"])
    assert body["partial"] is False


def test_the_log_search_filters_apply(tenant_a: TenantData) -> None:
    assert totals(get(tenant_a, severity="WARN")) == {"WARN": 1, "ERROR": 1}
    assert totals(get(tenant_a, service="billing")) == {}
    found = get(tenant_a, text="payment")
    assert (found["source"], totals(found)) == ("logs", {"ERROR": 1})
    assert totals(get(tenant_a, trace_id=tenant_a.trace_id)) == {"WARN": 1, "ERROR": 1}
    assert totals(get(tenant_a, **{"attr.service.name": "checkout", "severity": "ERROR"})) == {"ERROR": 1}
    assert get(tenant_a)["step_seconds"] == 60  # ten minutes in about 120 buckets: whole minutes (view)
    assert get(tenant_a, text="payment")["step_seconds"] == 5


def test_only_the_callers_tenant_is_counted(tenant_a: TenantData, tenant_b: TenantData) -> None:
    assert totals(get(tenant_b)) == {"INFO": 1, "WARN": 1, "ERROR": 1}
    assert totals(get(tenant_a, text="checkout started")) == {"INFO": 1}
    assert totals(get(tenant_b, text="checkout started")) == {}


def test_bad_parameters_are_named(tenant_a: TenantData) -> None:
    client = tenant_a.client()
    for params, name in (
        ({"step": "0"}, "step"),
        ({"step": "1", "start": "0", "end": "86400"}, "step"),
        ({"severity": "LOUD"}, "severity"),
        ({"trace_id": "xyz"}, "trace_id"),
        ({"cursor": "abc"}, "cursor"),
        ({"limit": "5"}, "limit"),
    ):
        response = client.get(URL, params)
        assert response.status_code == 400, params
        assert response.json()["error"].startswith(name), response.json()


def test_a_session_of_a_viewer_may_read_it(tenant_a: TenantData) -> None:
    from django.contrib.auth import get_user_model

    from tenants import logic

    user = get_user_model().objects.create_user("histogram-viewer", password="pw-12345678")
    logic.set_membership(tenant_a.tenant_id, user, "viewer")
    client = APIClient()
    client.force_login(user)
    response = client.get(URL, window(tenant_a))
    assert response.status_code == 200
    assert client.get(URL, {**window(tenant_a), "tenant": "tenant-b"}).status_code == 403


def test_openapi_describes_it() -> None:
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/logs/histogram"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"start", "end", "service", "severity", "text", "trace_id", "step", "attr.<key>"} <= names
    assert not names & {"limit", "cursor"}
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    fields = schema["components"]["schemas"][body]["properties"]
    assert set(fields) == {"step_seconds", "times", "series", "source", "partial"}
