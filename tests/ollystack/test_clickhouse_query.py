"""``manage.py clickhouse_query``: one read-only query on the configured engine, run as operators run it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ollystack.management.commands.clickhouse_query import first_keyword

REPO = Path(__file__).resolve().parents[2]


def _env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLLYSTACK_")}
    env.update(DJANGO_SETTINGS_MODULE="ollystack.settings.embedded", OLLYSTACK_VAR_DIR=str(var_dir), **extra)
    return env


def _manage(var_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=_env(var_dir, **extra),
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chq") / "var"
    done = _manage(path, "migrate_clickhouse")
    assert done.returncode == 0, done.stderr.decode()
    return path


def test_rows_in_the_requested_format_with_bound_parameters(var_dir: Path) -> None:
    done = _manage(
        var_dir,
        "clickhouse_query",
        "SELECT name, {note:String} AS note FROM ch_migrations WHERE name = {wanted:String} ORDER BY name;",
        "--format",
        "JSONEachRow",
        "--param",
        "wanted=0001_initial",
        "--param",
        'note=it\'s "quoted"\ttabbed',
    )
    assert done.returncode == 0, done.stderr.decode()
    rows = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert rows == [{"name": "0001_initial", "note": 'it\'s "quoted"\ttabbed'}]


def test_tsv_by_default_and_bytes_exactly_as_the_engine_wrote_them(var_dir: Path) -> None:
    done = _manage(
        var_dir,
        "clickhouse_query",
        "-- span ids are FixedString(8)\nSELECT number, toFixedString(unhex('41ff00aa'), 4) FROM numbers(2)",
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"0\tA\xff\\0\xaa\n1\tA\xff\\0\xaa\n"


def test_empty_result_prints_nothing(var_dir: Path) -> None:
    done = _manage(var_dir, "clickhouse_query", "SELECT count() FROM spans GROUP BY tenant_id")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DROP TABLE spans", "runs one read-only SELECT (or WITH … SELECT); got DROP"),
        ("/* sneaky */ INSERT INTO ch_migrations (name) VALUES ('x')", "got INSERT"),
        ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "readonly mode"),
        ("SELECT * FROM no_such_table", "the query failed: "),
    ],
)
def test_refused_and_failing_queries_exit_1_with_the_reason(var_dir: Path, sql: str, message: str) -> None:
    done = _manage(var_dir, "clickhouse_query", sql)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert message in stderr
    assert "Traceback" not in stderr


def test_engine_held_by_another_process(var_dir: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom chdb import session\n"
            f"s = session.Session({str(var_dir / 'clickhouse')!r})\nprint('held', flush=True)\n"
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        done = _manage(var_dir, "clickhouse_query", "SELECT 1")
    finally:
        holder.communicate("", timeout=30)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "is in use by another OllyStack process" in stderr
    assert "Traceback" not in stderr


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])  # bound, never listening: connections are refused


def test_unreachable_server_is_a_clear_error(tmp_path: Path, closed_port: int) -> None:
    done = _manage(
        tmp_path,
        "clickhouse_query",
        "SELECT 1",
        OLLYSTACK_CLICKHOUSE_URL=f"clickhouse://127.0.0.1:{closed_port}",
    )
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    [line] = stderr.strip().splitlines()  # the reason only, no driver traceback before it
    assert line.startswith("CommandError: the query failed: "), line
    assert f"127.0.0.1:{closed_port}" in line


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [
        ("select 1", "SELECT"),
        ("  -- c\n/* d\n*/ WITH 1 AS x SELECT x", "WITH"),
        ("(SELECT 1) UNION ALL (SELECT 2)", "("),
        ("-- only a comment", ""),
        ("SHOW TABLES", "SHOW"),
    ],
)
def test_first_keyword(sql: str, keyword: str) -> None:
    assert first_keyword(sql) == keyword
