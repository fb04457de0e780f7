"""HttpBackend over ClickHouse's HTTP interface, served by serve_clickhouse over the test session's engine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ollystack.clickhouse import (
    EmbeddedBackend,
    HttpBackend,
    NativeBackend,
    QueryError,
    Signal,
    backend_for,
    get_backend,
    set_backend,
)
from ollystack.clickhouse import user_sql as us
from ollystack.clickhouse.otlp import frame
from ollystack.clickhouse.queries import select
from ollystack.clickhouse.user_sql import Limits, run_user_sql
from ollystack.management.commands.serve_clickhouse import Command, EngineHTTPServer, build_server
from ollystack.telemetry.logs import LogQuery, search_logs
from ollystack.telemetry.metrics import MetricQuery, list_metric_points
from ollystack.telemetry.traces import get_trace
from tests.telemetry.builders import BASE_NS, NS, full_logs_request, full_metrics_request, full_trace_request

REPO = Path(__file__).resolve().parents[2]
WINDOW = (BASE_NS - 10 * NS, BASE_NS + 3600 * NS)


@pytest.fixture(scope="module")
def engine_server(clickhouse: Any) -> Iterator[EngineHTTPServer]:
    """serve_clickhouse's server in a thread, over the session's embedded engine."""
    assert isinstance(clickhouse, EmbeddedBackend)
    server = build_server(clickhouse, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def http(engine_server: EngineHTTPServer) -> Iterator[HttpBackend]:
    backend = HttpBackend(f"http://127.0.0.1:{engine_server.port}")
    yield backend
    backend.close()


def raw(server: EngineHTTPServer, method: str = "POST", body: bytes = b"", **args: str) -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{server.port}/", params=args, content=body or None)


# One row of every value kind OllyStack's tables and queries return.
TYPED_QUERY = """
SELECT
    toDateTime64('2023-05-06 07:08:09.123456789', 9, 'UTC') AS ts9,
    toDateTime64('2023-05-06 07:08:09.123', 3, 'UTC') AS ts3,
    toDateTime('2023-05-06 07:08:09', 'UTC') AS ts,
    toDate('2023-05-06') AS day,
    map('http.method', 'GET', 'k', '') AS attributes,
    map('a', 1.5) AS numbers,
    ['x', 'y'] AS strings,
    [toUInt64(1), 18446744073709551615] AS uint64s,
    [[1, 2], []] AS nested,
    toUInt64(18446744073709551615) AS big,
    toInt64(-9223372036854775808) AS small,
    toUInt8(255) AS byte,
    CAST(NULL AS Nullable(String)) AS nothing,
    CAST('set' AS Nullable(String)) AS something,
    CAST(NULL AS Nullable(Float64)) AS no_number,
    toLowCardinality('checkout') AS service,
    toFixedString('ab', 2) AS fixed,
    1.25 AS float,
    nan AS not_a_number,
    true AS flag,
    tuple(1, 'a') AS pair,
    toUUID('01234567-89ab-cdef-0123-456789abcdef') AS id,
    toDecimal64(12.5, 3) AS money,
    quantilesTDigest(0.5, 0.99)(number) AS quantiles
FROM numbers(1)
"""


def typed(rows: list[tuple[Any, ...]]) -> list[list[tuple[str, Any]]]:
    return [[(type(value).__name__, value) for value in row] for row in rows]


def test_values_have_the_embedded_backends_types(clickhouse: Any, http: HttpBackend) -> None:
    sql = TYPED_QUERY
    expected = clickhouse.query(sql)
    got = http.query(sql)
    assert got.columns == expected.columns
    assert len(got.rows) == 1
    for name, mine, theirs in zip(got.columns, got.rows[0], expected.rows[0], strict=True):
        assert type(mine) is type(theirs), name
        if name != "not_a_number":
            assert mine == theirs, name
    assert got.rows[0][got.columns.index("big")] == 18446744073709551615
    assert got.rows[0][got.columns.index("attributes")] == [("http.method", "GET"), ("k", "")]
    assert got.rows[0][got.columns.index("nothing")] is None


def test_empty_results_and_many_rows(clickhouse: Any, http: HttpBackend) -> None:
    none = http.query("SELECT number AS n, toString(number) AS s FROM numbers(10) WHERE n > 100")
    assert (none.columns, none.rows) == (["n", "s"], [])
    many = "SELECT number AS n, toString(number) AS s FROM numbers(100000)"
    assert http.query(many).rows == clickhouse.query(many).rows


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("String", 'it\'s a "quote", a tab\t, a newline\n, a backslash \\ and ünïcödé'),
        ("String", ""),
        ("Nullable(String)", None),
        ("UInt64", 18446744073709551615),
        ("Int64", -5),
        ("Float64", 0.1),
        ("Bool", True),
        ("Array(String)", ["a'b", "c\\d", ""]),
        ("Array(UInt32)", [1, 2, 3]),
        ("DateTime64(9, 'UTC')", "2023-05-06 07:08:09.123456789"),
    ],
)
def test_bound_parameters_round_trip(clickhouse: Any, http: HttpBackend, type_: str, value: Any) -> None:
    sql = f"SELECT {{v:{type_}}} AS v"
    assert http.query(sql, {"v": value}).rows == clickhouse.query(sql, {"v": value}).rows


def test_parameters_are_bound_not_pasted(http: HttpBackend) -> None:
    hostile = "x' OR 1=1 --"
    result = http.query("SELECT count() FROM spans WHERE tenant_id = {t:String}", {"t": hostile})
    assert result.rows == [(0,)]


def test_settings_travel_with_the_statement(http: HttpBackend) -> None:
    sql = "SELECT getSetting('max_threads') AS threads, getSetting('optimize_read_in_order') AS in_order"
    default = http.query(sql).rows[0]
    assert http.query(sql, settings={"max_threads": 1, "optimize_read_in_order": False}).rows == [(1, False)]
    assert http.query(sql).rows[0] == default  # a setting lasts one statement, not the pooled session
    limited = "SELECT count() FROM numbers(1000000)"
    with pytest.raises(QueryError, match=r"TOO_MANY_ROWS|Limit for rows"):
        http.query(limited, settings={"max_rows_to_read": 10, "read_overflow_mode": "throw"})


def test_errors_carry_clickhouses_message(engine_server: EngineHTTPServer, http: HttpBackend) -> None:
    with pytest.raises(QueryError, match=r"Code: 60\..*no_such_table"):
        http.query("SELECT * FROM no_such_table")
    with pytest.raises(QueryError, match="SYNTAX_ERROR"):
        http.command("SELEC 1")
    with pytest.raises(QueryError, match=r"Code: 47\."):
        http.query_with_stats("SELECT no_such_column")
    response = raw(engine_server, body=b"SELECT no_such_column")
    assert response.status_code == 500
    assert response.headers["X-ClickHouse-Exception-Code"] == "47"
    assert "no_such_column" in response.text
    # a failed statement leaves nothing behind on its session
    assert [http.query("SELECT {i:UInt8} AS i", {"i": i}).rows for i in range(8)] == [
        [(i,)] for i in range(8)
    ]


def test_unreachable_server_is_a_query_error_naming_it() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = HttpBackend(f"http://127.0.0.1:{port}", connect_timeout=1)
    with pytest.raises(QueryError, match=f"cannot reach ClickHouse at http://127.0.0.1:{port}"):
        backend.query("SELECT 1")
    assert backend.ping() is False


def test_query_with_stats_matches_the_embedded_backend(clickhouse: Any, http: HttpBackend) -> None:
    sql = "SELECT toString(number) AS n FROM numbers(1000) WHERE number % 100 = 0"
    got, expected = http.query_with_stats(sql), clickhouse.query_with_stats(sql)
    assert (got.columns, got.rows) == (expected.columns, expected.rows)
    assert got.rows_read == expected.rows_read == 1000
    assert got.elapsed_s is not None
    assert got.elapsed_s >= 0


def test_the_interface_subset(engine_server: EngineHTTPServer) -> None:
    ping = httpx.get(f"http://127.0.0.1:{engine_server.port}/ping")
    assert (ping.status_code, ping.text) == (200, "Ok.\n")
    # the engine writes the format the statement or default_format asks for
    assert raw(engine_server, body=b"SELECT 1 AS x, 'a' AS y FORMAT JSONEachRow").text == '{"x":1,"y":"a"}\n'
    assert raw(engine_server, body=b"SELECT 1 AS x, 'a' AS y", default_format="CSV").text == '1,"a"\n'
    assert raw(engine_server, body=b"SELECT 2").text == "2\n"  # TabSeparated by default
    # statement in the URL; bound values and settings as URL arguments
    answer = raw(
        engine_server, query="SELECT {n:UInt8} + 1, getSetting('max_threads')", param_n="41", max_threads="3"
    )
    assert answer.text == "42\t3\n"
    # GET runs read-only
    refused = raw(engine_server, "GET", query="CREATE TABLE never (a UInt8) ENGINE = Memory")
    assert refused.status_code == 500
    assert refused.headers["X-ClickHouse-Exception-Code"] == "164"
    assert raw(engine_server, "GET", query="SELECT 7").text == "7\n"
    bad = raw(engine_server, body=b"SELECT 1", **{"max threads": "1"})
    assert bad.status_code == 400


def test_insert_rows_from_the_body(clickhouse: Any, engine_server: EngineHTTPServer) -> None:
    table = f"http_insert_{uuid.uuid4().hex}"
    clickhouse.command(f"CREATE TABLE {table} (a UInt32, b String) ENGINE = Memory")
    try:
        rows = b'{"a":1,"b":"x"}\n{"a":2,"b":"y\'z"}\n'
        answer = raw(
            engine_server, body=rows, query=f"INSERT INTO {table} FORMAT JSONEachRow", max_insert_threads="1"
        )
        assert answer.status_code == 200, answer.text
        assert clickhouse.query(f"SELECT a, b FROM {table} ORDER BY a").rows == [(1, "x"), (2, "y'z")]
    finally:
        clickhouse.command(f"DROP TABLE {table}")


def test_concurrent_statements(http: HttpBackend) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: http.query("SELECT {i:UInt32} * 2", {"i": i}).rows, range(64)))
    assert results == [[(i * 2,)] for i in range(64)]


def test_otlp_segments_store_the_same_rows_as_the_embedded_path(
    clickhouse: Any, http: HttpBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the engine caches schemas sent with statements under the working directory
    file_tenant, http_tenant = str(uuid.uuid4()), str(uuid.uuid4())
    trace_id = os.urandom(16)
    for signal_, req, table in (
        (Signal.TRACES, full_trace_request(trace_id), "spans"),
        (Signal.LOGS, full_logs_request(), "logs"),
        (Signal.METRICS, full_metrics_request(), "metric_points"),
    ):
        by_file = tmp_path / f"file-{signal_.value}.seg"
        by_file.write_bytes(frame(file_tenant, req.SerializeToString()))
        by_http = tmp_path / f"http-{signal_.value}.seg"
        by_http.write_bytes(frame(http_tenant, req.SerializeToString()))
        token = f"http-{http_tenant}-{signal_.value}"
        stored = http.insert_segment_by_tenant(signal_, by_http, token)
        assert stored == {
            http_tenant: clickhouse.insert_otlp_segment(signal_, by_file, f"f-{file_tenant}-{signal_.value}")
        }
        assert stored[http_tenant] > 0
        assert http.segment_is_readable(signal_, by_http)
        # a replay (same token) stores nothing new and reports what the first insert stored
        assert http.insert_segment_by_tenant(signal_, by_http, token) == stored
        sql, params = select(table, http_tenant, ["count()"]).sql()
        assert http.query(sql, params).rows == [(stored[http_tenant],)]
    assert get_trace(http_tenant, trace_id.hex()) == get_trace(file_tenant, trace_id.hex())
    assert (
        search_logs(http_tenant, LogQuery(*WINDOW)).records
        == search_logs(file_tenant, LogQuery(*WINDOW)).records
    )
    assert list_metric_points(http_tenant, MetricQuery(*WINDOW)) == list_metric_points(
        file_tenant, MetricQuery(*WINDOW)
    )
    damaged = tmp_path / "damaged.seg"
    damaged.write_bytes(frame(http_tenant, b"\x0a\x05\xff\xff\xff\xff\xff"))  # whole frame, broken protobuf
    assert not http.segment_is_readable(Signal.TRACES, damaged)


def test_a_segment_longer_than_the_default_statement_limit(
    http: HttpBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tenant = str(uuid.uuid4())
    data = b"".join(frame(tenant, full_trace_request(os.urandom(16)).SerializeToString()) for _ in range(400))
    assert len(data) > 3 * 262144  # ClickHouse's default max_query_size, and escaping grows it further
    path = tmp_path / "big.seg"
    path.write_bytes(data)
    assert http.insert_otlp_segment(Signal.TRACES, path, f"big-{tenant}") == 400 * 3


def test_get_backend_dispatches_on_the_url(settings: Any, clickhouse: Any, tmp_path: Path) -> None:
    assert isinstance(backend_for("http://127.0.0.1:8123", tmp_path), HttpBackend)
    assert isinstance(
        backend_for("https://user:secret@ch.internal:8443/?database=olly", tmp_path), HttpBackend
    )
    assert isinstance(backend_for("clickhouse://ch.internal:9000/default", tmp_path), NativeBackend)
    settings.OLLYSTACK_CLICKHOUSE_URL = "http://127.0.0.1:8123"
    set_backend(None)
    try:
        chosen = get_backend()
        assert isinstance(chosen, HttpBackend)
        assert chosen.url == "http://127.0.0.1:8123"
        chosen.close()
    finally:
        set_backend(clickhouse)
    assert get_backend() is clickhouse


def test_url_credentials_and_arguments_are_sent(engine_server: EngineHTTPServer) -> None:
    backend = HttpBackend(f"http://olly:pw@127.0.0.1:{engine_server.port}/?max_threads=2")
    try:
        assert "pw" not in backend.url
        assert backend.query("SELECT getSetting('max_threads')").rows == [(2,)]
    finally:
        backend.close()


def test_help_says_there_is_no_authentication_and_it_binds_loopback() -> None:
    assert "No authentication" in Command.help
    options = Command().create_parser("manage.py", "serve_clickhouse").parse_args([])
    assert (options.bind, options.port) == ("127.0.0.1", 8123)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.e2e
def test_processes_share_one_engine_through_the_command(tmp_path: Path) -> None:
    """serve_clickhouse in its own process; migrate_clickhouse and another process reach it by URL."""
    port = free_port()
    env = {**os.environ, "OLLYSTACK_VAR_DIR": str(tmp_path / "engine")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("OLLYSTACK_CLICKHOUSE_URL", None)
    log = (tmp_path / "serve_clickhouse.log").open("wb")
    host = subprocess.Popen(
        [sys.executable, "manage.py", "serve_clickhouse", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=1).text == "Ok.\n":
                    break
            except httpx.HTTPError:
                pass
            assert host.poll() is None, (tmp_path / "serve_clickhouse.log").read_text()
            assert time.monotonic() < deadline, "serve_clickhouse did not answer /ping within 60 s"
            time.sleep(0.2)
        client_env = {**env, "OLLYSTACK_VAR_DIR": str(tmp_path / "client"), "OLLYSTACK_CLICKHOUSE_URL": url}
        migrate = [sys.executable, "manage.py", "migrate_clickhouse"]
        first = subprocess.run(migrate, cwd=REPO, env=client_env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "applied ClickHouse migration 0001" in first.stdout
        again = subprocess.run(migrate, cwd=REPO, env=client_env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "ClickHouse schema is up to date" in again.stdout
        backend = HttpBackend(url)
        try:
            tables = {
                row[0]
                for row in backend.query(
                    "SELECT name FROM system.tables WHERE database = currentDatabase()"
                ).rows
            }
            assert {"spans", "logs", "metric_points", "ch_migrations"} <= tables
        finally:
            backend.close()
        assert host.poll() is None
        host.send_signal(signal.SIGTERM)
        assert host.wait(timeout=60) == 0
        assert "no authentication" in (tmp_path / "serve_clickhouse.log").read_text()
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        log.close()


def test_users_sql_stays_in_its_tenant_over_http(
    http: HttpBackend, insert_requests: Callable[..., int]
) -> None:
    """The tenant filter and read-only mode of users' SQL are settings: they must survive the trip."""
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    for tenant in (a, b):
        insert_requests(Signal.TRACES, (tenant, full_trace_request(os.urandom(16))))
    assert {row[0] for row in run_user_sql(http, a, "SELECT DISTINCT tenant_id FROM spans").rows} == {a}
    settings = us.engine_settings(a, "default", ["ingest_batches", *us.ALLOWED_TABLES], Limits())
    assert http.query("SELECT DISTINCT tenant_id FROM spans", settings=settings).rows == [(a,)]
    assert http.query("SELECT count() FROM ingest_batches", settings=settings).rows == [(0,)]
    with pytest.raises(QueryError, match="READONLY"):
        http.command("CREATE TABLE evil (x UInt8) ENGINE = Memory", settings=settings)
