"""``python manage.py serve_clickhouse``: share one embedded engine between the processes of one host.

The embedded engine admits one process per data directory, while the production profile runs the web app,
``ingestd`` and Celery workers as separate processes. This command opens the engine under
``OLLYSTACK_CLICKHOUSE_PATH`` and serves the part of ClickHouse's HTTP interface that OllyStack uses, so the
other processes reach it with ``OLLYSTACK_CLICKHOUSE_URL=http://127.0.0.1:8123`` exactly as they would a
ClickHouse server:

- ``POST /`` with the statement in the body, or in the ``query`` URL argument followed by the body as the
  INSERT's data (text formats); ``GET /?query=…`` runs read-only;
- ``param_<name>`` URL arguments bind ``{name:Type}`` placeholders; every other URL argument is a setting;
- ``default_format`` (or the statement's own ``FORMAT``) picks the output format, written by the engine;
- errors: HTTP 500, header ``X-ClickHouse-Exception-Code`` and the engine's message;
- ``GET /ping`` (and ``GET /``) answer ``Ok.``.

It has no authentication and no TLS: anyone who can connect can read and change every tenant's data. It
binds 127.0.0.1 unless told otherwise; keep it there.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ollystack.clickhouse import EmbeddedBackend, EngineLockedError, QueryError
from ollystack.clickhouse.backends import settings_clause

log = logging.getLogger("ollystack.clickhouse.http")

# URL arguments of ClickHouse's HTTP interface that are not settings; the ones without a meaning here
# (credentials, compression, buffering, query ids) are accepted and ignored.
_NOT_SETTINGS = frozenset(
    {
        "query",
        "default_format",
        "database",
        "user",
        "password",
        "quota_key",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "http_native_compression_disable_checksumming_on_decompress",
    }
)
_CODE = re.compile(r"Code: (\d+)\.")
_TRAILING_FORMAT = re.compile(r"\s+FORMAT\s+\w+\s*$", re.IGNORECASE)


def run_statement(engine: EmbeddedBackend, sql: str, params: dict[str, str], fmt: str) -> bytes:
    """One statement on one of the engine's sessions; ``params`` are already in ClickHouse's text form
    (``param_*`` arguments), so they go to the engine as they came."""
    return bytes(engine.run_text(sql, fmt, params, raw=True).bytes())


class EngineRequestHandler(BaseHTTPRequestHandler):
    """One HTTP request: one statement on a session of the server's engine."""

    server: EngineHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive: clients pool their connections

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/ping" or (url.path == "/" and not url.query):
            self._reply(HTTPStatus.OK, b"Ok.\n", "text/plain; charset=UTF-8")
            return
        self._statement(url.path, url.query, b"", read_only=True)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = self.headers.get("Content-Length")
        if length is None or self.headers.get("Transfer-Encoding"):
            self._fail(HTTPStatus.LENGTH_REQUIRED, "send the statement with a Content-Length header")
            return
        self._statement(url.path, url.query, self.rfile.read(int(length)), read_only=False)

    def _statement(self, path: str, query_string: str, body: bytes, read_only: bool) -> None:
        if path != "/":
            self._fail(HTTPStatus.NOT_FOUND, f"no handler for {path}: statements go to /, health to /ping")
            return
        args = parse_qsl(query_string, keep_blank_values=True)
        params = {name[6:]: value for name, value in args if name.startswith("param_")}
        engine_settings: dict[str, Any] = {
            name: value for name, value in args if name not in _NOT_SETTINGS and not name.startswith("param_")
        }
        if read_only:
            engine_settings["readonly"] = "2"
        fixed = dict(args)
        fmt = fixed.get("default_format") or "TabSeparated"
        try:
            data = body.decode()
        except UnicodeDecodeError:
            self._fail(HTTPStatus.BAD_REQUEST, "the body must be UTF-8 text (statements and text formats)")
            return
        sql = fixed.get("query", "")
        if sql and data:
            # INSERT … FORMAT X in the URL, its rows in the body; settings go before the FORMAT clause
            clause = settings_clause(engine_settings)
            head = _TRAILING_FORMAT.search(sql)
            sql = f"{sql[: head.start()]}{clause}{head.group(0)}" if head else sql + clause
            sql, engine_settings = f"{sql}\n{data}", {}
        elif not sql:
            sql = data
        if not sql.strip():
            self._fail(
                HTTPStatus.BAD_REQUEST, "empty statement: send it in the body or as the query argument"
            )
            return
        try:
            output = run_statement(self.server.engine, sql + settings_clause(engine_settings), params, fmt)
        except QueryError as exc:
            message = str(exc)
            code = _CODE.search(message)
            log.info("event=clickhouse_http_error code=%s", code.group(1) if code else "")
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, message, code.group(1) if code else "1001")
            return
        except ValueError as exc:  # a malformed setting name
            self._fail(HTTPStatus.BAD_REQUEST, str(exc), "115")
            return
        self._reply(HTTPStatus.OK, output, "application/octet-stream", {"X-ClickHouse-Format": fmt})

    def _fail(self, status: HTTPStatus, message: str, code: str | None = None) -> None:
        headers = {"X-ClickHouse-Exception-Code": code} if code else {}
        self._reply(status, (message.rstrip("\n") + "\n").encode(), "text/plain; charset=UTF-8", headers)

    def _reply(
        self, status: HTTPStatus, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("event=clickhouse_http_request client=%s %s", self.client_address[0], format % args)


class EngineHTTPServer(ThreadingHTTPServer):
    """A thread per connection; statements wait for one of the engine's sessions."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, engine: EmbeddedBackend, bind: str, port: int) -> None:
        self.engine = engine
        super().__init__((bind, port), EngineRequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def build_server(engine: EmbeddedBackend, bind: str = "127.0.0.1", port: int = 8123) -> EngineHTTPServer:
    """The HTTP server over ``engine`` (not started: call ``serve_forever``; port 0 picks a free one)."""
    return EngineHTTPServer(engine, bind, port)


class Command(BaseCommand):
    help = (
        "Serve the embedded ClickHouse engine (OLLYSTACK_CLICKHOUSE_PATH) over ClickHouse's HTTP "
        "interface so that several OllyStack processes on this host share it "
        "(OLLYSTACK_CLICKHOUSE_URL=http://HOST:PORT). No authentication and no TLS: whoever can "
        "connect reads and changes all data; binds 127.0.0.1 by default."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8123, help="TCP port (default 8123; 0 picks one)")
        parser.add_argument(
            "--sessions", type=int, default=4, help="statements the engine runs at once (default 4)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            engine = EmbeddedBackend(settings.OLLYSTACK_CLICKHOUSE_PATH, pool_size=options["sessions"])
        except EngineLockedError as exc:
            raise CommandError(str(exc)) from None
        # the engine caches schemas that arrive with statements under its working directory
        os.chdir(engine.path)
        try:
            server = build_server(engine, options["bind"], options["port"])
        except OSError as exc:
            engine.close()
            raise CommandError(f"cannot listen on {options['bind']}:{options['port']}: {exc}") from None

        def stop(signum: int, _frame: Any) -> None:
            # shutdown() waits for serve_forever to return, so it cannot run on the serving thread
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if options["bind"] not in ("127.0.0.1", "localhost", "::1"):
            self.stderr.write(
                f"warning: listening on {options['bind']} without authentication; anyone who can connect "
                "reads and changes every tenant's data"
            )
        self.stdout.write(
            f"ClickHouse HTTP interface on http://{options['bind']}:{server.port} "
            f"(engine {engine.path}, no authentication)"
        )
        self.stdout.flush()
        try:
            server.serve_forever()
        finally:
            server.server_close()
            engine.close()
