"""POST /api/v1/sql against real data in the embedded engine."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from ollystack.clickhouse.user_sql import Limits
from tests.api.conftest import TenantData

pytestmark = pytest.mark.django_db


def post(client: APIClient, body: Any, **extra: Any) -> Any:
    return client.post("/api/v1/sql", body, format="json", **extra)


def test_select_returns_columns_rows_and_stats(tenant_a: TenantData):
    response = post(tenant_a.client(), {"query": "SELECT name, trace_id FROM spans ORDER BY name"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["columns"] == [
        {"name": "name", "type": "LowCardinality(String)"},
        {"name": "trace_id", "type": "FixedString(16)"},
    ]
    assert body["rows"] == [
        ["GET /checkout", tenant_a.trace_id.upper()],
        ["SELECT orders", tenant_a.trace_id.upper()],
    ]
    assert body["rows_read"] >= 2
    assert body["elapsed_ms"] > 0
    assert body["truncated"] is False


def test_each_tenant_sees_only_its_rows(tenant_a: TenantData, tenant_b: TenantData):
    sql = (
        "SELECT DISTINCT tenant_id FROM (SELECT tenant_id FROM spans UNION ALL SELECT tenant_id FROM logs"
        " UNION ALL SELECT tenant_id FROM metric_points UNION ALL SELECT tenant_id FROM log_volume_1m)"
    )
    for tenant in (tenant_a, tenant_b):
        response = post(tenant.client(), {"query": sql})
        assert response.status_code == 200, response.json()
        assert response.json()["rows"] == [[tenant.tenant_id]]


def test_the_tenant_parameter_cannot_switch_tenant(tenant_a: TenantData, tenant_b: TenantData):
    response = tenant_a.client().post(
        f"/api/v1/sql?tenant={tenant_b.name}", {"query": "SELECT 1"}, format="json"
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("SELECT * FROM system.tables", "table system.tables is not allowed; allowed tables are spans"),
        ("SELECT * FROM ingest_batches", "table ingest_batches is not allowed"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table functions are not allowed"),
        ("SELECT count() FROM spans SETTINGS readonly = 0", "SETTINGS clause is not allowed"),
        ("DROP TABLE spans", "only one SELECT statement is allowed"),
        ("SELECT 1; SELECT 2", "Multi-statements are not allowed"),
        ("SELECT nope FROM spans", "nope"),
    ],
)
def test_refused_queries_are_400_with_the_reason(tenant_a: TenantData, query: str, reason: str):
    response = post(tenant_a.client(), {"query": query})
    assert response.status_code == 400
    assert reason in response.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": ""},
        {"query": "SELECT 1", "format": "csv"},
        {"query": "SELECT 1", "settings": {}},
        ["SELECT 1"],
    ],
)
def test_malformed_bodies_are_400(tenant_a: TenantData, body: Any):
    response = post(tenant_a.client(), body)
    assert response.status_code == 400
    assert response.json()["error"]


def test_authentication_is_required(tenant_a: TenantData):
    assert post(APIClient(), {"query": "SELECT 1"}).status_code == 401


def test_limits_answer_408_413_422(
    tenant_a: TenantData, tenant_b: TenantData, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(
        "ollystack.telemetry.api.sql.LIMITS",
        Limits(
            max_execution_time=0.5, max_memory_usage=16 << 20, max_result_rows=2, max_result_bytes=1 << 20
        ),
    )
    client = tenant_a.client()
    slow = post(client, {"query": "SELECT sum(cityHash64(number)) FROM numbers(100000000000)"})
    assert slow.status_code in (408, 422), slow.json()  # stopped by time, or by rows read first
    timed = post(client, {"query": "SELECT sum(sleepEachRow(0.3)) FROM numbers(5)"})
    assert timed.status_code == 408, timed.json()
    assert "longer than 0.5 s" in timed.json()["error"]
    big = post(client, {"query": "SELECT repeat(toString(number), 1000000) FROM numbers(2)"})
    assert big.status_code == 413, big.json()
    memory = post(client, {"query": "SELECT groupArray(number) FROM numbers(10000000)"})
    assert memory.status_code == 422, memory.json()
    truncated = post(client, {"query": "SELECT number FROM numbers(10)"})
    assert truncated.json()["rows"] == [[0], [1]]
    assert truncated.json()["truncated"] is True
    after = post(tenant_b.client(), {"query": "SELECT DISTINCT tenant_id FROM spans"})
    assert after.json()["rows"] == [[tenant_b.tenant_id]]
