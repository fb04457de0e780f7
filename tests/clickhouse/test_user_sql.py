"""Users' SQL on the real engine: every way out of the tenant's rows that we could think of is tried."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from ollystack.clickhouse import Backend, Signal
from ollystack.clickhouse import user_sql as us
from ollystack.clickhouse.user_sql import Limits, SqlError, SqlRefused, run_user_sql
from tests.api.conftest import NS, log_request, metric_request, trace_request

# tables the test data fills for both tenants (the others may stay empty for them)
FILLED = ("spans", "logs", "metric_points", "service_metrics_1m", "log_volume_1m", "metric_series_1m")


@pytest.fixture
def tenants(clickhouse: Backend, insert_requests: Callable[..., int]) -> tuple[str, str]:
    """Two tenants with traces, logs and metrics each; returns (a, b)."""
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    base = time.time_ns() - 10 * 60 * NS
    for tenant, service in ((a, "checkout"), (b, "billing")):
        insert_requests(Signal.TRACES, (tenant, trace_request(service, uuid.uuid4().bytes, base)))
        insert_requests(
            Signal.LOGS, (tenant, log_request(service, [(base + NS, 17, "ERROR", f"{service} failed", b"")]))
        )
        insert_requests(
            Signal.METRICS,
            (tenant, metric_request(service, f"{service}.depth", [(base + NS, 1.0), (base, 2.0)])),
        )
    return a, b


def tenant_ids(backend: Backend, tenant: str, sql: str) -> set[str]:
    return {row[0] for row in run_user_sql(backend, tenant, sql).rows}


@pytest.mark.parametrize("table", us.ALLOWED_TABLES)
def test_each_allowed_table_shows_only_the_callers_rows(
    clickhouse: Backend, tenants: tuple[str, str], table: str
):
    a, b = tenants
    everyone = {r[0] for r in clickhouse.query(f"SELECT DISTINCT tenant_id FROM {table}").rows}
    seen = tenant_ids(clickhouse, a, f"SELECT DISTINCT tenant_id FROM {table}")
    assert seen <= {a}
    if table in FILLED:
        assert {a, b} <= everyone
        assert seen == {a}
        assert tenant_ids(clickhouse, b, f"SELECT DISTINCT tenant_id FROM default.{table}") == {b}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT tenant_id FROM (SELECT * FROM spans)",
        "WITH s AS (SELECT tenant_id FROM spans) SELECT tenant_id FROM s",
        "WITH spans AS (SELECT tenant_id FROM spans) SELECT tenant_id FROM spans",
        "SELECT l.tenant_id FROM spans AS s JOIN logs AS l ON 1 = 1",
        "SELECT s.tenant_id FROM spans s, logs l",
        "SELECT tenant_id FROM spans UNION ALL SELECT tenant_id FROM logs"
        " UNION DISTINCT SELECT tenant_id FROM metric_points",
        "SELECT x.tenant_id FROM default.spans AS x",
        "SELECT arrayJoin((SELECT groupArray(tenant_id) FROM spans))",
        "SELECT tenant_id FROM spans WHERE tenant_id IN (SELECT tenant_id FROM logs)",
        "SELECT tenant_id FROM service_metrics_1m FINAL",
        "SELECT tenant_id FROM log_volume_1m AS v FINAL",
        "SELECT /* */ tenant_id FROM spans -- all of them\n",
        "SELECT tenant_id FROM spans WHERE 1 OR tenant_id != ''",
        "SELECT tenant_id FROM spans PREWHERE 1 = 1 OR 1 = 1",
        "SELECT tenant_id FROM spans INTERSECT SELECT tenant_id FROM logs",
    ],
)
def test_tenant_filter_holds_through_every_shape(clickhouse: Backend, tenants: tuple[str, str], sql: str):
    a, _b = tenants
    assert tenant_ids(clickhouse, a, sql) == {a}


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM system.tables", "table system.tables is not allowed"),
        ("SELECT * FROM system.one", "table system.one is not allowed"),
        ("SELECT * FROM information_schema.tables", "not allowed"),
        ("SELECT * FROM INFORMATION_SCHEMA.TABLES", "not allowed"),
        ("SELECT * FROM ingest_batches", "table ingest_batches is not allowed"),
        ("SELECT * FROM topology_client_spans", "not allowed"),
        ("SELECT * FROM spans_local", "table spans_local is not allowed"),
        ("SELECT * FROM other_db.spans", "table other_db.spans is not allowed"),
        ("SELECT * FROM service_metrics_1m_mv", "not allowed"),
        ("SELECT 1 WHERE 'x' IN ingest_batches", "table ingest_batches is not allowed"),
        ("SELECT 1 WHERE 'x' IN system.one", "table system.one is not allowed"),
        ("WITH ingest_batches AS (SELECT * FROM ingest_batches) SELECT * FROM ingest_batches", "not allowed"),
        ("SELECT * FROM (WITH b AS (SELECT 1) SELECT * FROM b), ingest_batches", "not allowed"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table functions are not allowed (file)"),
        ("SELECT file('/etc/passwd')", "function file is not allowed"),
        ("SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", "table functions are not allowed (url)"),
        ("SELECT * FROM remote('127.0.0.1', default, spans)", "table functions are not allowed (remote)"),
        ("SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV')", "table functions are not allowed (s3)"),
        ("SELECT * FROM merge('default', '^spans$')", "table functions are not allowed (merge)"),
        ("SELECT * FROM cluster('default', default.spans)", "table functions are not allowed (cluster)"),
        ("SELECT * FROM view(SELECT * FROM ingest_batches)", "table functions are not allowed (view)"),
        ("SELECT * FROM input('x String')", "table functions are not allowed (input)"),
        ("SELECT * FROM spans AS s JOIN format(CSV, 'a\n1') AS f ON 1", "table functions are not allowed"),
        ("SELECT dictGet('d', 'v', 1)", "function dictGet is not allowed"),
        ("SELECT joinGet('j', 'v', 1)", "function joinGet is not allowed"),
        ("SELECT getServerSetting('path')", "function getServerSetting is not allowed"),
        ("SELECT count() FROM spans SETTINGS readonly = 0", "SETTINGS clause is not allowed"),
        ("SELECT * FROM (SELECT * FROM spans SETTINGS additional_table_filters = {})", "SETTINGS clause"),
        ("SELECT 1 FORMAT CSV", "FORMAT is not allowed"),
        ("SELECT 1 INTO OUTFILE '/tmp/x'", "INTO OUTFILE is not allowed"),
        ("SET readonly = 0", "only one SELECT statement is allowed (got SET)"),
        ("INSERT INTO spans (tenant_id) VALUES ('x')", "only one SELECT"),
        ("INSERT INTO spans (tenant_id) SELECT 'x'", "only one SELECT"),
        ("ALTER TABLE spans DELETE WHERE 1", "only one SELECT"),
        ("DROP TABLE spans", "only one SELECT"),
        ("CREATE TABLE t (x UInt8) ENGINE = Memory", "only one SELECT"),
        ("CREATE VIEW v AS SELECT * FROM ingest_batches", "only one SELECT"),
        ("OPTIMIZE TABLE spans FINAL", "only one SELECT"),
        ("SYSTEM DROP MARK CACHE", "only one SELECT"),
        ("KILL QUERY WHERE 1", "only one SELECT"),
        ("TRUNCATE TABLE spans", "only one SELECT"),
        ("EXPLAIN SELECT 1", "only one SELECT"),
        ("SHOW TABLES", "only one SELECT"),
        ("DESCRIBE TABLE ingest_batches", "only one SELECT"),
        ("SELECT 1; SELECT 2", "Multi-statements are not allowed"),
        ("SELECT 1; DROP TABLE spans", "Multi-statements are not allowed"),
        ("SELECT 1 /* */; DROP TABLE spans", "Multi-statements are not allowed"),
        ("SELECT 1 -- \n; DROP TABLE spans", "Multi-statements are not allowed"),
        ("SELECT 1 /* unterminated", "comment is not closed"),
        ("", "the query is empty"),
        ("   \n", "the query is empty"),
    ],
)
def test_refused(clickhouse: Backend, tenant_id: str, sql: str, reason: str):
    with pytest.raises(SqlError) as raised:
        run_user_sql(clickhouse, tenant_id, sql)
    assert reason in raised.value.message
    assert_no_leak(clickhouse)


def test_refusals_name_the_allowed_tables(clickhouse: Backend, tenant_id: str):
    with pytest.raises(SqlRefused) as raised:
        run_user_sql(clickhouse, tenant_id, "SELECT * FROM ingest_batches")
    assert "allowed tables are spans, logs, metric_points" in raised.value.message


def assert_no_leak(backend: Backend) -> None:
    """Query-level settings end with the query: the shared sessions are back to their defaults."""
    for _ in range(4):
        readonly, filters, timeout = backend.query(
            "SELECT getSetting('readonly'), getSetting('additional_table_filters'),"
            " getSetting('max_execution_time')"
        ).rows[0]
        assert (readonly, filters) == (0, [])
        assert float(timeout) == 0


def test_the_engine_enforces_without_the_syntax_check(clickhouse: Backend, tenants: tuple[str, str]):
    """The settings alone (no tree check): other tables read nothing, writes and file access fail, and a
    subquery's SETTINGS cannot lift the tenant filter."""
    a, b = tenants
    settings = us.engine_settings(a, "default", ["ingest_batches", *us.ALLOWED_TABLES], Limits())
    assert clickhouse.query("SELECT count() FROM ingest_batches WHERE tenant_id = {b:String}", {"b": b}).rows[
        0
    ][0]
    assert clickhouse.query("SELECT count() FROM ingest_batches", settings=settings).rows == [(0,)]
    lifted = "SELECT DISTINCT tenant_id FROM (SELECT * FROM spans SETTINGS additional_table_filters = {})"
    assert clickhouse.query(lifted, settings=settings).rows == [(a,)]
    for sql in (
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
        "INSERT INTO spans (tenant_id) VALUES ('x')",
        "CREATE TABLE evil (x UInt8) ENGINE = Memory",
        "SELECT 1 SETTINGS readonly = 0",
    ):
        with pytest.raises(Exception, match=r"readonly|READONLY"):
            clickhouse.query(sql, settings=settings)
    assert_no_leak(clickhouse)


def test_result_shape_and_json_values(clickhouse: Backend, tenants: tuple[str, str]):
    a, _b = tenants
    result = run_user_sql(
        clickhouse,
        a,
        "SELECT name, trace_id, toUInt64(18446744073709551615) AS big, toUInt64(3) AS small, nan AS n,"
        " map('k', 1) AS m, toDecimal64(1.5, 2) AS d FROM spans ORDER BY name",
    )
    assert [(c.name, c.type) for c in result.columns] == [
        ("name", "LowCardinality(String)"),
        ("trace_id", "FixedString(16)"),
        ("big", "UInt64"),
        ("small", "UInt64"),
        ("n", "Float64"),
        ("m", "Map(String, UInt8)"),
        ("d", "Decimal(18, 2)"),
    ]
    first = result.rows[0]
    assert first[0] == "GET /checkout"
    assert len(first[1]) == 32
    assert int(first[1], 16)  # hex
    assert first[2:] == ["18446744073709551615", 3, None, {"k": 1}, 1.5]
    assert result.rows_read >= 2
    assert result.elapsed_ms > 0
    assert result.truncated is False


def test_aggregate_states_come_back_finalized(clickhouse: Backend, tenants: tuple[str, str]):
    a, _b = tenants
    result = run_user_sql(
        clickhouse,
        a,
        "SELECT service_name, sum(requests), quantilesBFloat16WeightedMerge(0.5)(duration), any(duration)"
        " FROM service_metrics_1m GROUP BY service_name",
    )
    assert result.rows[0][0] == "checkout"
    assert result.rows[0][1] >= 1
    assert len(result.rows[0][3]) == 4  # the state's four quantiles


def test_large_results_are_truncated_at_the_row_limit(clickhouse: Backend, tenants: tuple[str, str]):
    a, _b = tenants
    result = run_user_sql(
        clickhouse, a, "SELECT number FROM numbers(100) ORDER BY number DESC", Limits(max_result_rows=3)
    )
    assert result.rows == [[99], [98], [97]]
    assert result.truncated is True
    exact = run_user_sql(clickhouse, a, "SELECT number FROM numbers(3)", Limits(max_result_rows=3))
    assert exact.truncated is False
    assert len(exact.rows) == 3


def test_huge_results_are_refused_at_the_byte_limit(clickhouse: Backend, tenants: tuple[str, str]):
    a, _b = tenants
    with pytest.raises(us.SqlResultTooLarge, match="larger than 1 MiB"):
        run_user_sql(
            clickhouse,
            a,
            "SELECT repeat(toString(number % 10), 1000) FROM numbers(5000)",
            Limits(max_result_bytes=1 << 20),
        )
    with pytest.raises(us.SqlResultTooLarge):  # a constant is counted once per row too
        run_user_sql(
            clickhouse, a, "SELECT repeat('x', 1000000) FROM numbers(100)", Limits(max_result_bytes=1 << 20)
        )
    assert_no_leak(clickhouse)


def test_slow_queries_stop_at_the_time_limit(clickhouse: Backend, tenants: tuple[str, str]):
    a, b = tenants
    started = time.monotonic()
    with pytest.raises(us.SqlTimeout, match=r"longer than 0\.5 s"):
        run_user_sql(
            clickhouse,
            a,
            "SELECT sum(cityHash64(s.name, number)) FROM spans AS s, numbers(100000000000) AS n",
            Limits(max_execution_time=0.5, max_rows_to_read=10**13),
        )
    assert time.monotonic() - started < 5
    assert_no_leak(clickhouse)
    assert tenant_ids(clickhouse, b, "SELECT tenant_id FROM spans") == {b}


def test_memory_and_read_limits(clickhouse: Backend, tenants: tuple[str, str]):
    a, b = tenants
    with pytest.raises(us.SqlMemoryExceeded, match="more than 16 MiB"):
        run_user_sql(
            clickhouse,
            a,
            "SELECT groupArray(number) FROM numbers(10000000)",
            Limits(max_memory_usage=16 << 20),
        )
    with pytest.raises(us.SqlTooMuchRead, match="reads more than 1,000 rows"):
        run_user_sql(clickhouse, a, "SELECT count() FROM numbers(100000)", Limits(max_rows_to_read=1000))
    assert_no_leak(clickhouse)
    assert tenant_ids(clickhouse, b, "SELECT tenant_id FROM logs") == {b}


def test_after_each_refusal_another_tenant_still_works(clickhouse: Backend, tenants: tuple[str, str]):
    a, b = tenants
    for sql in (
        "SELECT * FROM system.tables",
        "SELECT 1 SETTINGS readonly = 0",
        "DROP TABLE spans",
        "SELECT x",
    ):
        with pytest.raises(SqlError):
            run_user_sql(clickhouse, a, sql)
        assert tenant_ids(clickhouse, b, "SELECT tenant_id FROM spans") == {b}
    assert_no_leak(clickhouse)


def test_engine_errors_are_reported_plainly(clickhouse: Backend, tenant_id: str):
    with pytest.raises(SqlError) as raised:
        run_user_sql(clickhouse, tenant_id, "SELECT no_such_column FROM spans")
    assert "no_such_column" in raised.value.message
    assert "formatQuery" not in raised.value.message
    assert "version" not in raised.value.message


@pytest.mark.parametrize("bad", ["acme", "AAAAAAAA-0000-0000-0000-000000000001", "x' OR 1 --", ""])
def test_tenant_id_must_be_a_uuid(bad: str):
    with pytest.raises(ValueError, match="not a lower-case UUID"):
        us.engine_settings(bad, "default", [], Limits())


def test_server_mode_ddl():
    tenant = "0f8fad5b-d9cb-469f-a165-70867728950e"
    ddl = us.server_mode_ddl("ollystack", tenant)
    user = "ollystack_sql_0f8fad5bd9cb469fa16570867728950e"
    assert ddl[0].startswith(
        "CREATE SETTINGS PROFILE IF NOT EXISTS ollystack_sql SETTINGS readonly = 2 CONST"
    )
    assert "max_execution_time = 10 MAX 10" in ddl[0]
    assert ddl[1] == (
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_password BY '<password>'"
        " SETTINGS PROFILE ollystack_sql"
    )
    grants = [s for s in ddl if s.startswith("GRANT")]
    assert grants == [f"GRANT SELECT ON ollystack.{t} TO {user}" for t in us.ALLOWED_TABLES]
    assert (
        f"CREATE ROW POLICY IF NOT EXISTS {user} ON ollystack.spans"
        f" USING tenant_id = '{tenant}' AS permissive TO {user}" in ddl
    )
    assert not any("ingest_batches" in s for s in ddl)
    with pytest.raises(ValueError, match="not a plain ClickHouse database name"):
        us.server_mode_ddl("db; DROP", tenant)
