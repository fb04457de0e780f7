"""The trace page's reads: a trace's waterfall (placement fields of every span) and one span in full."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ollystack.clickhouse import Signal
from ollystack.telemetry import trace_waterfall
from tests.api.conftest import TenantData
from tests.telemetry.builders import expected_spans, full_trace_request


def test_the_waterfall_places_every_span(tenant_a: TenantData) -> None:
    response = tenant_a.client().get(f"/api/v1/traces/{tenant_a.trace_id.upper()}/waterfall")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["traceId"] == tenant_a.trace_id
    assert body["truncated"] is False
    root, child = body["spans"]
    assert root == {
        "spanId": "00000000000000a1",
        "parentSpanId": "",
        "name": "GET /checkout",
        "serviceName": "checkout",
        "kind": 2,
        "startTimeUnixNano": str(tenant_a.base_ns),
        "endTimeUnixNano": str(tenant_a.base_ns + 50_000_000),
        "status": {"code": 0, "message": ""},
    }
    assert child["parentSpanId"] == "00000000000000a1"
    assert child["kind"] == 3


def test_one_span_in_full_equals_the_span_of_the_whole_trace(
    tenant_a: TenantData, insert: Callable[[Signal, str, Any], int]
) -> None:
    trace_id = bytes.fromhex("5" * 32)
    request = full_trace_request(trace_id)
    insert(Signal.TRACES, tenant_a.tenant_id, request)
    client = tenant_a.client()
    whole = client.get(f"/api/v1/traces/{trace_id.hex()}").json()["spans"]
    assert whole == expected_spans(request)
    for span in whole:
        one = client.get(f"/api/v1/traces/{trace_id.hex()}/spans/{span['spanId'].upper()}")
        assert one.status_code == 200, one.json()
        assert one.json() == span
    placed = client.get(f"/api/v1/traces/{trace_id.hex()}/waterfall").json()["spans"]
    fields = ("spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano", "status")
    assert placed == [{**{f: s[f] for f in fields}, "serviceName": s["serviceName"]} for s in whole]


def test_unknown_and_malformed_ids_are_refused_with_the_reason(
    tenant_a: TenantData, tenant_b: TenantData
) -> None:
    client = tenant_a.client()
    missing = client.get(f"/api/v1/traces/{'0' * 31}1/waterfall")
    assert missing.status_code == 404
    assert "no spans for trace" in missing.json()["error"]
    bad = client.get("/api/v1/traces/nope/waterfall")
    assert bad.status_code == 400
    assert "is not a trace id" in bad.json()["error"]
    no_span = client.get(f"/api/v1/traces/{tenant_a.trace_id}/spans/{'f' * 16}")
    assert no_span.status_code == 404
    assert f"no span {'f' * 16}" in no_span.json()["error"]
    bad_span = client.get(f"/api/v1/traces/{tenant_a.trace_id}/spans/a1")
    assert bad_span.status_code == 400
    assert "is not a span id" in bad_span.json()["error"]
    other = tenant_b.client()
    assert other.get(f"/api/v1/traces/{tenant_a.trace_id}/waterfall").status_code == 404
    assert other.get(f"/api/v1/traces/{tenant_a.trace_id}/spans/00000000000000a1").status_code == 404


def test_a_viewer_session_may_read_them(tenant_a: TenantData) -> None:
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from tenants import logic

    user = get_user_model().objects.create_user("waterfall-viewer", password="pw-12345678")
    logic.set_membership(tenant_a.tenant_id, user, "viewer")
    client = APIClient()
    client.force_login(user)
    url = f"/api/v1/traces/{tenant_a.trace_id}/waterfall"
    assert client.get(url, {"tenant": tenant_a.name}).status_code == 200
    assert client.get(url, {"tenant": tenant_a.name, "start": "1"}).status_code == 400


def test_the_waterfall_is_bounded(tenant_a: TenantData) -> None:
    found = trace_waterfall.waterfall(tenant_a.tenant_id, tenant_a.trace_id, limit=1)
    assert [s["name"] for s in found.spans] == ["GET /checkout"]
    assert found.truncated is True
    whole = trace_waterfall.waterfall(tenant_a.tenant_id, tenant_a.trace_id, limit=2)
    assert len(whole.spans) == 2
    assert whole.truncated is False
