"""NativeBackend against a real ClickHouse server (OLLYSTACK_TEST_CLICKHOUSE_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ollystack.clickhouse import NativeBackend, Signal
from ollystack.clickhouse.migrate import apply_migrations
from ollystack.clickhouse.otlp import frame
from ollystack.clickhouse.queries import select
from tests.telemetry.builders import full_logs_request, full_metrics_request, full_trace_request

pytestmark = pytest.mark.clickhouse_server


@pytest.fixture(scope="module")
def server() -> Iterator[NativeBackend]:
    url = os.environ.get("OLLYSTACK_TEST_CLICKHOUSE_URL", "")
    if not url:
        pytest.skip("set OLLYSTACK_TEST_CLICKHOUSE_URL=clickhouse://… to run server-mode tests")
    backend = NativeBackend(url)
    apply_migrations(backend, log=lambda _m: None)
    yield backend
    backend.close()


def test_ping_and_params(server: NativeBackend) -> None:
    assert server.ping()
    assert server.query("SELECT {s:String} AS s", {"s": "it's"}).rows == [("it's",)]


def test_migrations_rerunnable(server: NativeBackend) -> None:
    assert apply_migrations(server, log=lambda _m: None) == []


def test_insert_segments_and_dedup(server: NativeBackend, tmp_path: Path) -> None:
    tenant = str(uuid.uuid4())
    for signal, req, table in (
        (Signal.TRACES, full_trace_request(os.urandom(16)), "spans"),
        (Signal.LOGS, full_logs_request(), "logs"),
        (Signal.METRICS, full_metrics_request(), "metric_points"),
    ):
        path = tmp_path / f"{signal.value}.seg"
        path.write_bytes(frame(tenant, req.SerializeToString()))
        assert server.insert_otlp_segment(signal, path, f"t-{tenant}-{signal.value}") > 0
        sql, params = select(table, tenant, ["count()"]).sql()
        before = server.query(sql, params).rows[0][0]
        server.insert_otlp_segment(signal, path, f"t-{tenant}-{signal.value}")
        assert server.query(sql, params).rows[0][0] == before
