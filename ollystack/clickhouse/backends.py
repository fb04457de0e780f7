"""Connection backends: the embedded engine (chdb, in-process) and a ClickHouse server (native protocol).

Both speak the same SQL and bind values as ``{name:Type}`` query parameters. The native backend is a thin
adapter so that the behaviour tests run against chdb cover it too.
"""

from __future__ import annotations

import enum
import errno
import fcntl
import json
import math
import os
import queue
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollystack.clickhouse import otlp


class Signal(enum.Enum):
    TRACES = "traces"
    LOGS = "logs"
    METRICS = "metrics"


class EngineLockedError(RuntimeError):
    """The embedded data directory is held by another process (chdb allows one process per directory)."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"the embedded ClickHouse engine under {path} is in use by another OllyStack process "
            "(probably `manage.py serve`); stop it first, "
            "or point OLLYSTACK_CLICKHOUSE_URL at a ClickHouse server"
        )
        self.path = path


class QueryError(RuntimeError):
    """ClickHouse rejected a statement; the message is ClickHouse's."""


@dataclass
class QueryResult:
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    # what the engine reports about the run; only ``query_with_stats`` fills them in
    rows_read: int | None = None
    elapsed_s: float | None = None

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


Params = Mapping[str, Any]
Settings = Mapping[str, Any]


class Backend:
    """What the rest of OllyStack may do with ClickHouse."""

    def query(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> QueryResult:
        raise NotImplementedError

    def command(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> None:
        raise NotImplementedError

    def query_with_stats(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> QueryResult:
        """``query`` plus the rows the engine read and its run time (users' SQL reports them). Values come
        back as the JSON the engine writes, so the statement should select text."""
        raise NotImplementedError

    def ping(self) -> bool:
        try:
            return self.query("SELECT 1").rows == [(1,)]
        except Exception:
            return False

    def close(self) -> None:
        raise NotImplementedError

    def insert_otlp_segment(self, signal: Signal, path: Path, dedup_token: str, sampled: bool = False) -> int:
        """Insert every record of a segment file; returns the number of rows stored in the signal's table.
        ``sampled``: the segment holds requests that carry trace sampling parameters."""
        return sum(self.insert_segment_by_tenant(signal, path, dedup_token, sampled).values())

    def insert_segment_by_tenant(
        self, signal: Signal, path: Path, dedup_token: str, sampled: bool = False
    ) -> dict[str, int]:
        """Insert a segment; returns the rows stored per tenant id (a replay stores nothing new and returns
        what the first insert stored)."""
        self._insert_segment(signal, path, dedup_token, sampled)
        return self.rows_written_by_tenant(signal, dedup_token)

    def _insert_segment(self, signal: Signal, path: Path, dedup_token: str, sampled: bool) -> None:
        raise NotImplementedError

    def segment_source(self, signal: Signal, path: Path) -> tuple[str, dict[str, str]]:
        """The table function that reads a segment, and the settings that locate its schema."""
        raise NotImplementedError

    def segment_is_readable(self, signal: Signal, path: Path) -> bool:
        """Whether the engine can parse every request of a segment (False: the bytes are damaged)."""
        from ollystack.clickhouse import ingest_sql

        source, schema = self.segment_source(signal, path)
        try:
            self.query(ingest_sql.parse_check_statement(signal.value, source), settings=schema)
        except QueryError:
            return False
        return True

    def rows_written_by_tenant(self, signal: Signal, dedup_token: str) -> dict[str, int]:
        """Rows a segment insert stored in its table, per tenant id (recorded by a view on insert; the
        engine's own written-rows figure also counts the rows every view wrote)."""
        result = self.query(
            "SELECT tenant_id, sum(rows) FROM ingest_batches"
            " WHERE token = {token:String} AND signal = {signal:String} GROUP BY tenant_id",
            {"token": dedup_token, "signal": signal.value},
        )
        return {str(tenant): int(rows) for tenant, rows in result.rows}

    def sampled_out_by_tenant(self, path: Path) -> dict[str, int]:
        """Spans of a traces segment that trace sampling drops, per tenant id."""
        from ollystack.clickhouse import ingest_sql

        source, schema = self.segment_source(Signal.TRACES, path)
        result = self.query(ingest_sql.sampled_out_statement(source), settings=schema)
        return {str(tenant): int(count) for tenant, count in result.rows}


def settings_clause(settings: Settings | None) -> str:
    if not settings:
        return ""
    parts = []
    for name, value in settings.items():
        if not name.replace("_", "").isalnum():
            raise ValueError(f"invalid setting name {name!r}")
        parts.append(f"{name} = {_literal(value)}")
    return " SETTINGS " + ", ".join(parts)


def _literal(value: Any) -> str:
    """A ClickHouse literal for a setting value or a nested parameter element."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if value is None:
        return "NULL"
    if isinstance(value, list | tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, bytes):
        return "'" + value.decode("latin-1").translate(_BYTE_ESCAPES) + "'"
    text = str(value)
    return "'" + _escape(text).replace("'", "\\'") + "'"


_BYTE_ESCAPES = {
    b: (chr(b) if 0x20 <= b < 0x7F and chr(b) not in "'\\" else f"\\x{b:02x}") for b in range(256)
}
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"}


def _escape(text: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in text) if any(c in _ESCAPES for c in text) else text


def format_param(value: Any) -> str:
    """Serialise a Python value as a ClickHouse query parameter value (text in 'escaped' format)."""
    if isinstance(value, bytes):
        return "".join(f"\\x{b:02x}" for b in value)
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "\\N"
    return _literal(value)


def segment_insert_sql(signal: Signal, source: str, sampled: bool = False) -> str:
    """The INSERT for one segment, reading from ``source`` (a ``file()``/``format()`` call)."""
    from ollystack.clickhouse import ingest_sql

    return ingest_sql.insert_statement(signal.value, source, sampled)


def segment_settings(dedup_token: str, schema: Mapping[str, str]) -> dict[str, Any]:
    """Settings of a segment INSERT; ``schema`` says where the engine finds the OTLP schema."""
    return {
        **schema,
        "insert_deduplication_token": dedup_token,
        # a replayed segment must not be counted twice by materialized views either
        "deduplicate_blocks_in_dependent_materialized_views": 1,
        "max_insert_threads": 1,
        # parse the segment in 1 MiB blocks, not as one: parsing a 20 MiB segment needed > 160 MiB before,
        # < 40 MiB now, and is ~10 % faster (measured)
        "input_format_max_block_size_bytes": 1 << 20,
        # an INSERT … SELECT over one file has nothing for the plan optimizer to do; skipping it saves
        # ~7 ms per insert and 7-10 % of an 8 MiB segment's insert time (measured)
        "query_plan_enable_optimizations": 0,
    }


def schema_sent_along(signal: Signal) -> dict[str, str]:
    """The OTLP schema travelling with the query (a server cannot read our files)."""
    return {
        "format_schema": otlp.proto_schema(otlp.ROWS[signal.value]),
        "format_schema_source": "string",
        "format_schema_message_name": "Row",
    }


# Server settings of the embedded engine. Merges run in the background of the same process as ingest; the
# server default of 16 merge threads on a 2-core machine only multiplies their memory.
ENGINE_SETTINGS = "background_pool_size=2"


def arrow_result(table: Any) -> QueryResult:
    """Rows of an Arrow table as Python values (the types every backend returns)."""
    columns = list(table.column_names)
    data = [table.column(i).to_pylist() for i in range(len(columns))]
    return QueryResult(columns, list(zip(*data, strict=True)) if data else [])


def json_compact_result(document_bytes: bytes) -> QueryResult:
    """A ``JSONCompact`` answer with the engine's statistics (rows read, elapsed)."""
    document = json.loads(document_bytes)
    stats = document.get("statistics", {})
    return QueryResult(
        [column["name"] for column in document["meta"]],
        [tuple(row) for row in document["data"]],
        rows_read=int(stats.get("rows_read", 0)),
        elapsed_s=float(stats.get("elapsed", 0.0)),
    )


class EmbeddedBackend(Backend):
    """chdb: the ClickHouse engine inside this process, data on local disk.

    chdb runs one engine per process and per data directory, so this backend is a process-wide singleton
    (see :func:`ollystack.clickhouse.get_backend`). A session runs one statement at a time; a small pool of
    sessions on the same directory lets threads run statements concurrently.
    """

    def __init__(self, path: Path | str, pool_size: int = 4) -> None:
        # chdb's allocator (jemalloc, configured by JE_MALLOC_CONF when it first runs): one arena instead of
        # 4 per core keeps freed memory reusable across the engine's threads (measured: peak resident set
        # of two concurrent 8 MiB segment inserts 359 → 293 MiB anonymous, and no slower).
        os.environ.setdefault("JE_MALLOC_CONF", "narenas:1")
        from chdb import session

        release_untouched_library_pages("chdb")
        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        self._sessions: queue.LifoQueue[Any] = queue.LifoQueue()
        self._all: list[Any] = []
        self._closed = False
        self._lock = threading.Lock()
        for _ in range(max(1, pool_size)):
            try:
                sess = session.Session(f"{self.path}?{ENGINE_SETTINGS}")
            except Exception as exc:
                if "Cannot lock file" in str(exc) or _held_by_other_process(self.path):
                    self.close()
                    raise EngineLockedError(self.path) from None
                self.close()
                raise
            self._all.append(sess)
            self._sessions.put(sess)
        self._schemas = {sig: {"format_schema": f"{path}:Row"} for sig, path in self._write_schema_files()}

    def _write_schema_files(self) -> list[tuple[Signal, Path]]:
        """The OTLP schemas as files the engine reads by absolute path (a schema sent as a string would be
        cached by chdb under the process's working directory, and hashed again on every insert)."""
        directory = self.path / "format_schemas"
        directory.mkdir(exist_ok=True)
        files = []
        for signal in Signal:
            target = directory / f"otlp_{signal.value}.proto"
            text = otlp.proto_schema(otlp.ROWS[signal.value])
            if not target.exists() or target.read_text() != text:
                staging = target.with_suffix(f".tmp{os.getpid()}")
                staging.write_text(text)
                staging.replace(target)
            files.append((signal, target))
        return files

    @contextmanager
    def _session(self) -> Iterator[Any]:
        if self._closed:
            raise QueryError(f"the embedded ClickHouse engine under {self.path} is closed")
        sess = self._sessions.get()
        try:
            yield sess
        finally:
            self._sessions.put(sess)

    def _run(self, sql: str, params: Params | None, settings: Settings | None, fmt: str) -> Any:
        bound = {k: format_param(v) for k, v in (params or {}).items()}
        return self.run_text(sql + settings_clause(settings), fmt, bound, raw=fmt == "CSV")

    def run_text(self, text: str, fmt: str, bound: Mapping[str, str], raw: bool = False) -> Any:
        """One statement on a session, its values already in ClickHouse's text form (``param_*`` arguments
        of the HTTP interface arrive so). ``raw``: the engine's result object (``.bytes()``), unconverted."""
        with self._session() as sess:
            try:
                return (
                    sess._conn._conn.query(text, fmt, params=dict(bound))
                    if raw
                    else sess.query(text, fmt, params=dict(bound))
                )
            except RuntimeError as exc:
                # A query that fails while streaming leaves part of its output in the session, prepended to
                # the next result (measured with chdb 4.4); one throwaway query takes it.
                with suppress(Exception):
                    sess.query("SELECT 1", fmt)
                raise QueryError(str(exc)) from None

    def query(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> QueryResult:
        return arrow_result(self._run(sql, params, settings, "ArrowTable"))

    def command(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> None:
        self._run(sql, params, settings, "CSV")

    def query_with_stats(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> QueryResult:
        return json_compact_result(self._run(sql, params, settings, "JSONCompact").bytes())

    def segment_source(self, signal: Signal, path: Path) -> tuple[str, dict[str, str]]:
        source = f"file({_literal(str(Path(path).resolve()))}, 'Protobuf', {_literal(_structure(signal))})"
        return source, self._schemas[signal]

    def _insert_segment(self, signal: Signal, path: Path, dedup_token: str, sampled: bool) -> None:
        source, schema = self.segment_source(signal, path)
        settings = segment_settings(dedup_token, schema)
        self._run(segment_insert_sql(signal, source, sampled), None, settings, "CSV")

    def insert_otlp_segment_inline(self, signal: Signal, data: bytes, dedup_token: str) -> int:
        """The server variant (segment and schema sent with the query), run on the embedded engine."""
        settings = segment_settings(dedup_token, schema_sent_along(signal))
        self._run(segment_insert_sql(signal, inline_source(signal, data)), None, settings, "CSV")
        return sum(self.rows_written_by_tenant(signal, dedup_token).values())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for sess in self._all:
                sess.close()
            self._all.clear()


_MADV_PAGEOUT = 21  # Linux ≥ 5.4


def release_untouched_library_pages(name: str) -> int:
    """Hand the read-only pages of a loaded shared library back to the kernel; returns the mappings advised.

    Loading chdb's library (≈700 MB, the whole ClickHouse server) faults in ≈340 MB of it, most of which is
    code the embedded engine never runs. ``MADV_PAGEOUT`` drops those clean file-backed pages; the ones the
    engine does use come back on first touch (measured: resident set 395 → 131 MiB after import, 236 MiB
    after a workload). Best effort: a no-op where ``/proc`` or ``madvise`` are missing.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        with open("/proc/self/maps") as maps:
            lines = maps.readlines()
    except (OSError, AttributeError):
        return 0
    advised = 0
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or name not in Path(fields[5]).name or "w" in fields[1]:
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if madvise(start, end - start, _MADV_PAGEOUT) == 0:
            advised += 1
    return advised


def inline_source(signal: Signal, data: bytes) -> str:
    """``format()`` over segment bytes sent with the query (a server cannot read our files)."""
    return f"format('Protobuf', {_literal(_structure(signal))}, {_literal(data)})"


def _structure(signal: Signal) -> str:
    return otlp.structure(otlp.ROWS[signal.value])


def _held_by_other_process(path: Path) -> bool:
    status = path / "status"
    if not status.exists():
        return False
    with status.open("rb") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return False


class NativeBackend(Backend):
    """A ClickHouse server over the native protocol (clickhouse-driver); the server binds ``{name:Type}``."""

    def __init__(self, url: str) -> None:
        from clickhouse_driver import Client
        from clickhouse_driver.util.helpers import parse_url

        self.url = url
        self._local = threading.local()
        self._clients: list[Any] = []
        host, options = parse_url(url)
        options["settings"] = {**options.get("settings", {}), "server_side_params": True}
        self._factory = lambda: Client(host, **options)

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            self._local.client = client
            self._clients.append(client)
        return client

    def _execute(self, sql: str, params: Params | None, settings: Settings | None) -> Any:
        from clickhouse_driver.errors import Error

        try:
            return self._client().execute(
                sql, dict(params or {}), with_column_types=True, settings=dict(settings or {})
            )
        except Error as exc:
            raise QueryError(str(exc)) from None

    def query(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> QueryResult:
        rows, columns = self._execute(sql, params, settings)
        return QueryResult([name for name, _type in columns], [tuple(r) for r in rows])

    def command(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> None:
        self._execute(sql, params, settings)

    def query_with_stats(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> QueryResult:
        result = self.query(sql, params, settings)
        last = self._client().last_query
        result.rows_read = int(last.progress.rows) if last is not None else None
        result.elapsed_s = float(last.elapsed) if last is not None else None
        return result

    def segment_source(self, signal: Signal, path: Path) -> tuple[str, dict[str, str]]:
        return inline_source(signal, Path(path).read_bytes()), schema_sent_along(signal)

    def _insert_segment(self, signal: Signal, path: Path, dedup_token: str, sampled: bool) -> None:
        source, schema = self.segment_source(signal, path)
        sql = segment_insert_sql(signal, source, sampled)
        self._execute(sql, None, segment_settings(dedup_token, schema))

    def close(self) -> None:
        for client in self._clients:
            client.disconnect()
        self._clients.clear()


class HttpBackend(Backend):
    """A ClickHouse server over its HTTP interface (port 8123), or ``manage.py serve_clickhouse``.

    Statements travel in the request body, bound values as ``param_<name>`` and settings as URL arguments;
    rows come back as Arrow streams, so values have the Python types the embedded backend gives. One pooled
    HTTP client serves every thread of the process. The URL may carry ``user:password@`` (sent as basic
    auth) and URL arguments sent with every statement (``?database=…``, settings).
    """

    def __init__(self, url: str, connect_timeout: float = 5.0, read_timeout: float = 300.0) -> None:
        import httpx

        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"HttpBackend needs an http:// or https:// URL, got {url!r}")
        self.url = str(parsed.copy_with(username=None, password=None, query=None))
        self._fixed_args = dict(parsed.params.multi_items())
        auth = (parsed.username, parsed.password) if parsed.username else None
        self._client = httpx.Client(
            base_url=self.url,
            auth=auth,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )

    def _post(self, sql: str, params: Params | None, settings: Settings | None, fmt: str | None) -> bytes:
        import httpx

        args: dict[str, str] = {**self._fixed_args}
        for name, value in (settings or {}).items():
            args[name] = _url_setting(value)
        for name, value in (params or {}).items():
            args[f"param_{name}"] = format_param(value)
        if fmt is not None:
            args["default_format"] = fmt
        # errors found while the result streams would otherwise arrive after a 200 status
        args.setdefault("wait_end_of_query", "1")
        try:
            response = self._client.post("/", params=args, content=sql.encode())
        except httpx.TimeoutException as exc:
            raise QueryError(f"ClickHouse at {self.url} did not answer in time ({exc!r})") from None
        except httpx.HTTPError as exc:
            raise QueryError(f"cannot reach ClickHouse at {self.url}: {exc}") from None
        if response.status_code >= 400 or "X-ClickHouse-Exception-Code" in response.headers:
            message = response.text.strip() or f"HTTP {response.status_code} from ClickHouse at {self.url}"
            raise QueryError(message)
        return response.content

    def query(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> QueryResult:
        import pyarrow as pa

        body = self._post(sql, params, settings, "ArrowStream")
        return arrow_result(pa.ipc.open_stream(body).read_all()) if body else QueryResult()

    def command(self, sql: str, params: Params | None = None, settings: Settings | None = None) -> None:
        self._post(sql, params, settings, None)

    def query_with_stats(
        self, sql: str, params: Params | None = None, settings: Settings | None = None
    ) -> QueryResult:
        return json_compact_result(self._post(sql, params, settings, "JSONCompact"))

    def segment_source(self, signal: Signal, path: Path) -> tuple[str, dict[str, str]]:
        source = inline_source(signal, Path(path).read_bytes())
        # the segment is a literal inside the statement: the parser must accept a statement that long
        # (URL settings apply before parsing; the statement around the source is a few KiB)
        return source, {**schema_sent_along(signal), "max_query_size": str(len(source) + (1 << 20))}

    def _insert_segment(self, signal: Signal, path: Path, dedup_token: str, sampled: bool) -> None:
        source, schema = self.segment_source(signal, path)
        self._post(
            segment_insert_sql(signal, source, sampled), None, segment_settings(dedup_token, schema), None
        )

    def close(self) -> None:
        self._client.close()


def _url_setting(value: Any) -> str:
    """A setting's value as ClickHouse reads it from a URL argument."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
