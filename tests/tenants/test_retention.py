"""Retention per tenant and signal: set in the admin, carried to the ingest path, written on every row,
enforced by the tables' TTL.

The TTL runs on an engine of its own (in its own process): the suite's shared engine keeps its TTL merges
stopped, as its test data is dated 2023.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tenants import logic
from tenants.logic import TenantPolicy
from tenants.models import Tenant
from tests.tenants.test_admin import DEFAULT_POLICY_FORM, admin_client_  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]
DAY_NS = 86_400 * 10**9


@pytest.mark.django_db
def test_defaults_follow_the_signal() -> None:
    logic.create_tenant("acme")
    tenant = Tenant.objects.get(name="acme")
    assert (tenant.retention_days_traces, tenant.retention_days_logs, tenant.retention_days_metrics) == (
        30,
        30,
        90,
    )
    policy = logic.tenant_policy("acme")[1]
    assert (policy.retention_days_traces, policy.retention_days_logs, policy.retention_days_metrics) == (
        30,
        30,
        90,
    )


@pytest.mark.django_db
def test_retention_reaches_the_ingest_path() -> None:
    logic.create_tenant("acme")
    policy = TenantPolicy(retention_days_traces=7, retention_days_logs=14, retention_days_metrics=400)
    assert logic.set_tenant_policy("acme", policy) == policy
    raw = logic.issue_ingest_key("acme", "edge").raw
    assert logic.load_ingest_keys()[logic.hash_key(raw)].policy == policy


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            TenantPolicy(retention_days_traces=0),
            "retention_days_traces: Ensure this value is greater than or",
        ),
        (TenantPolicy(retention_days_logs=3651), "retention_days_logs: Ensure this value is less than or"),
    ],
)
def test_retention_out_of_range_is_refused(policy: TenantPolicy, message: str) -> None:
    logic.create_tenant("acme")
    with pytest.raises(logic.InvalidPolicy, match=f"^policy for tenant acme is not valid: {message}"):
        logic.set_tenant_policy("acme", policy)


def test_retention_is_edited_in_the_admin(admin_client_: Client) -> None:  # noqa: F811
    tenant = logic.create_tenant("acme")
    url = f"/admin/tenants/tenant/{tenant.tenant_id}/change/"
    html = admin_client_.get(url).content.decode()
    assert "Retention" in html
    assert "Days spans are kept" in html
    form = {"display_name": "Acme", "is_active": "on", **DEFAULT_POLICY_FORM}
    response = admin_client_.post(url, {**form, "retention_days_logs": "7", "retention_days_metrics": "365"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert logic.tenant_policy("acme")[1] == TenantPolicy(retention_days_logs=7, retention_days_metrics=365)
    refused = admin_client_.post(url, {**form, "retention_days_traces": "0"})
    assert refused.status_code == 200
    assert "Ensure this value is greater than or equal to 1" in refused.content.decode()


def ttl_scenario(workdir: Path) -> dict[str, Any]:
    """Rows 10 days old with a retention of 7 and of 30 days, and rows sent without one (the table's
    default, 30 days), through the segment insert; counts before and after the TTL is applied."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from ollystack.clickhouse import EmbeddedBackend, Signal
    from ollystack.clickhouse.migrate import apply_migrations
    from ollystack.clickhouse.otlp import frame
    from ollystack.clickhouse.tables import SchemaOptions

    def request(signal: Signal, at: int) -> bytes:
        if signal is Signal.TRACES:
            traces = ExportTraceServiceRequest()
            span = traces.resource_spans.add().scope_spans.add().spans.add(name="GET /", kind=2)
            span.trace_id, span.span_id = os.urandom(16), os.urandom(8)
            span.start_time_unix_nano, span.end_time_unix_nano = at, at + 1000
            return traces.SerializeToString()
        if signal is Signal.LOGS:
            logs = ExportLogsServiceRequest()
            logs.resource_logs.add().scope_logs.add().log_records.add(
                time_unix_nano=at
            ).body.string_value = "hi"
            return logs.SerializeToString()
        metrics = ExportMetricsServiceRequest()
        gauge = metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="cpu")
        gauge.gauge.data_points.add(time_unix_nano=at, as_double=0.5)
        return metrics.SerializeToString()

    backend = EmbeddedBackend(workdir / "clickhouse")
    apply_migrations(backend, log=lambda _m: None, options=SchemaOptions())
    backend.command("SYSTEM STOP TTL MERGES")  # a TTL merge could run as soon as the rows are in
    ten_days_ago = time.time_ns() - 10 * DAY_NS
    tables = {Signal.TRACES: "spans", Signal.LOGS: "logs", Signal.METRICS: "metric_points"}
    result = {}
    for signal, table in tables.items():
        segment = workdir / f"{signal.value}.seg"
        segment.write_bytes(
            frame("short", request(signal, ten_days_ago), retention_days=7)
            + frame("long", request(signal, ten_days_ago), retention_days=30)
            + frame("unset", request(signal, ten_days_ago))
            + frame("short", request(signal, time.time_ns()), retention_days=7)
        )
        backend.insert_otlp_segment(signal, segment, segment.stem)

        def counts(table: str = table) -> dict[str, list[int]]:
            rows = backend.query(
                f"SELECT tenant_id, groupArray(retention_days) FROM {table} "
                "GROUP BY tenant_id ORDER BY tenant_id"
            ).rows
            return {tenant: sorted(days) for tenant, days in rows}

        before = counts()
        backend.command(f"SYSTEM START TTL MERGES {table}")
        backend.command(f"ALTER TABLE {table} MATERIALIZE TTL", settings={"mutations_sync": 2})
        backend.command(f"OPTIMIZE TABLE {table} FINAL")
        result[table] = {"before": before, "after": counts()}
    backend.close()
    return result


def test_rows_past_their_retention_are_deleted(tmp_path: Path) -> None:
    call = f"m.ttl_scenario(pathlib.Path({str(tmp_path)!r}))"
    code = f"import django; django.setup(); import json, pathlib, {__name__} as m; print(json.dumps({call}))"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ollystack.settings.test"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for table in ("spans", "logs", "metric_points"):
        assert result[table]["before"] == {"long": [30], "short": [7, 7], "unset": [30]}, table
        # the 10-day-old row with 7 days is gone; today's row with 7 days and the 30-day rows stay
        assert result[table]["after"] == {"long": [30], "short": [7], "unset": [30]}, table
