"""The production profile as real processes, for fault tests.

One ``ProductionStack`` per test: a fresh PostgreSQL database (created and migrated here, dropped at the
end), Redis for the quota counters, any number of ``ingestd`` processes (each with its own ports and var
directory: the embedded engine admits one process per directory) and optionally the web app under uvicorn
with an ``AdminClient`` that drives the Django admin over HTTP like a browser does. Every process writes
its log to a file; ``production_stack`` prints them all when the test ends, and pytest shows that output
for failing tests only. A process that does not start raises with its log in the message.
"""

from __future__ import annotations

import contextlib
import html.parser
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = "redis-server --daemonize yes"
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ADMIN_PASSWORD = "e2e-" + secrets.token_urlsafe(12)
REDIS_CLAIM = "ollystack:e2e:stack"  # set in a Redis database while a stack uses it


# --- services -----------------------------------------------------------------------------------------


def postgres_admin() -> Any:
    """An autocommit connection to the ``postgres`` database, or a failed test saying how to start it."""
    import psycopg

    try:
        return psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as err:
        pytest.fail(
            f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} ({err}); start it with '{START_POSTGRES}'"
        )


def require_redis(url: str = REDIS_URL) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as err:
        pytest.fail(f"Redis is not reachable at {url} ({err}); start it with '{START_REDIS}'")
    finally:
        client.close()


def in_parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent slow steps (process start-ups, management commands) at the same time."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail saying what did not happen in time."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last value: {last!r})")


# --- processes ----------------------------------------------------------------------------------------


class Process:
    """A child process whose every run logs to its own file under ``log_dir``."""

    def __init__(self, name: str, log_dir: Path) -> None:
        self.name = name
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # Signals go to the whole process group (a Celery worker and its pool children) when True.
    group = False

    def spawn(self, argv: list[str], env: dict[str, str]) -> None:
        assert self.proc is None, f"{self.name} is already running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(path)
        with path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=self.group
            )

    def log_contains(self, text: str) -> bool:
        """Whether the log of the current run holds ``text`` (readiness lines of Celery, for one)."""
        log = self.logs[-1] if self.logs else None
        return log is not None and log.exists() and text in log.read_text(errors="replace")

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"{self.name} exited with {code} while starting:\n{self.log_text()}")
            if probe():
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{self.name} was not ready within {timeout:.0f}s:\n{self.log_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the process and wait for it; a process that does not exit in time is killed and fails."""
        assert self.proc is not None, f"{self.name} is not running"
        proc, self.proc = self.proc, None
        self._signal(proc, sig)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(proc, signal.SIGKILL)
            proc.wait()
            raise AssertionError(
                f"{self.name} did not exit within {timeout:.0f}s of signal {sig}:\n{self.log_text()}"
            ) from None
        if self.group:  # pool children outliving their parent would go on working
            self._signal(proc, signal.SIGKILL)
        return code

    def _signal(self, proc: subprocess.Popen[bytes], sig: int) -> None:
        if not self.group:
            proc.send_signal(sig)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def kill(self) -> int:
        """``kill -9``: no shutdown code runs."""
        return self.stop(signal.SIGKILL)

    def log_text(self) -> str:
        parts = []
        for run, path in enumerate(self.logs):
            text = path.read_text(errors="replace") if path.exists() else "(no log file)"
            parts.append(f"----- {self.name} run {run} ({path}) -----\n{text}")
        return "\n".join(parts)


@dataclass
class Metrics:
    """One scrape of a Prometheus endpoint."""

    samples: list[tuple[str, dict[str, str], float]]

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(
            v for n, sample_labels, v in self.samples if n == name and labels.items() <= sample_labels.items()
        )


class Ingestd(Process):
    """``manage.py ingestd`` with its own ports and var directory."""

    def __init__(self, stack: ProductionStack, name: str, var_dir: Path, env: dict[str, str]) -> None:
        super().__init__(name, stack.root / "logs")
        self.stack = stack
        self.var_dir = var_dir
        self.ports = {"grpc": free_port(), "http": free_port(), "metrics": free_port()}
        self.overrides = dict(env)
        self._wal_dir: Path | None = None

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"

    @property
    def otlp_http(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics']}/metrics"

    def env(self) -> dict[str, str]:
        """The stack's environment, this daemon's ports, short batch and key refresh delays; the
        ``overrides`` given to ``start`` or ``stack.ingestd`` win over all of it."""
        defaults = {
            "OLLYSTACK_OTLP_GRPC_PORT": str(self.ports["grpc"]),
            "OLLYSTACK_OTLP_HTTP_PORT": str(self.ports["http"]),
            "OLLYSTACK_METRICS_PORT": str(self.ports["metrics"]),
            "OLLYSTACK_BATCH_MAX_DELAY_MS": "50",
            "OLLYSTACK_KEY_REFRESH_SECONDS": "1",
        }
        return self.stack.env(self.var_dir, **{**defaults, **self.overrides})

    def start(self, timeout: float = 30.0, **env: str) -> Ingestd:
        """Start (or start again: same ports and directory); ``env`` changes the environment from now on."""
        self.overrides.update(env)
        self.spawn([sys.executable, "manage.py", "ingestd"], self.env())
        self.wait_ready(self._answers, timeout)
        return self

    def restart(self, timeout: float = 30.0, **env: str) -> Ingestd:
        if self.running:
            self.stop()
        return self.start(timeout, **env)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def metrics(self) -> Metrics:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        return Metrics(
            [
                (s.name, s.labels, s.value)
                for family in text_string_to_metric_families(text)
                for s in family.samples
            ]
        )

    @property
    def wal_dir(self) -> Path:
        """Where this daemon keeps its WAL, as the settings say (asked once)."""
        if self._wal_dir is None:
            self._wal_dir = Path(self.stack.setting("OLLYSTACK_WAL_DIR", self.var_dir, self.overrides))
        return self._wal_dir

    def wal_files(self) -> dict[Path, int]:
        """Every file under the WAL directory (quarantined segments included) and its size."""
        if not self.wal_dir.exists():
            return {}
        return {p: p.stat().st_size for p in sorted(self.wal_dir.rglob("*")) if p.is_file()}

    def clickhouse_query(self, sql: str, **params: str) -> list[dict[str, Any]]:
        """Rows of a read-only query on this daemon's embedded engine (the daemon must be stopped)."""
        assert not self.running, f"stop {self.name} first: the embedded engine admits one process"
        return self.stack.clickhouse_query(self.var_dir, sql, params, self.overrides)


class Web(Process):
    """The web app under uvicorn with the production settings (plain HTTP; TLS is the proxy's job)."""

    def __init__(self, stack: ProductionStack) -> None:
        super().__init__("web", stack.root / "logs")
        self.stack = stack
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Web:
        argv = [sys.executable, "-m", "uvicorn", "ollystack.asgi:application", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        self.spawn(argv, self.stack.env(self.stack.root / "web-var"))
        self.wait_ready(self._answers, timeout)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def admin(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> AdminClient:
        client = AdminClient(self.url)
        client.login(username, password)
        return client


class EngineHost(Process):
    """``manage.py serve_clickhouse``: one embedded engine that every other process of the stack reads and
    writes over ClickHouse's HTTP interface (``OLLYSTACK_CLICKHOUSE_URL``), as they would a real server."""

    def __init__(self, stack: ProductionStack) -> None:
        super().__init__("clickhouse", stack.root / "logs")
        self.stack = stack
        self.var_dir = stack.root / "clickhouse-var"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> EngineHost:
        env = self.stack.env(self.var_dir)
        env.pop("OLLYSTACK_CLICKHOUSE_URL", None)  # this process is the engine
        self.spawn([sys.executable, "manage.py", "serve_clickhouse", "--port", str(self.port)], env)
        self.wait_ready(self._answers, timeout)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def query(self, sql: str, **params: str | int) -> list[dict[str, Any]]:
        """Rows of a query with bound ``{name:Type}`` parameters, read over the HTTP interface."""
        args = urllib.parse.urlencode({f"param_{k}": str(v) for k, v in params.items()})
        req = urllib.request.Request(
            f"{self.url}/?{args}", data=f"{sql} FORMAT JSONEachRow".encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as err:
            message = err.read().decode(errors="replace")
            raise AssertionError(f"ClickHouse refused {sql!r}: {message}") from None
        return [json.loads(line) for line in text.splitlines() if line]


class CeleryWorker(Process):
    """``celery -A ollystack worker`` (prefork pool): signals reach the pool children too, so ``kill()`` is a
    machine losing the worker, not a parent dying while its children finish their tasks."""

    group = True

    def __init__(self, stack: ProductionStack, name: str, concurrency: int) -> None:
        super().__init__(name, stack.root / "logs")
        self.stack = stack
        self.concurrency = concurrency

    def start(self, timeout: float = 60.0) -> CeleryWorker:
        argv = [sys.executable, "-m", "celery", "-A", "ollystack", "worker", "--loglevel=INFO"]
        argv += ["--hostname", f"{self.name}@%h", "--concurrency", str(self.concurrency)]
        argv += ["--without-gossip", "--without-mingle"]
        self.spawn(argv, self.stack.env(self.stack.root / f"{self.name}-var"))
        self.wait_ready(lambda: self.log_contains(" ready."), timeout)
        return self

    def restart(self, timeout: float = 60.0) -> CeleryWorker:
        if self.running:
            self.stop()
        return self.start(timeout)


class CeleryBeat(Process):
    """``celery -A ollystack beat``: the one scheduler of the stack, its schedule file in its var dir."""

    def __init__(self, stack: ProductionStack) -> None:
        super().__init__("beat", stack.root / "logs")
        self.stack = stack
        self.var_dir = stack.root / "beat-var"

    def start(self, timeout: float = 60.0) -> CeleryBeat:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "celery", "-A", "ollystack", "beat", "--loglevel=INFO"]
        self.spawn(argv, self.stack.env(self.var_dir))  # the schedule file goes under the var dir
        self.wait_ready(lambda: self.log_contains("beat: Starting"), timeout)
        return self


class ApiClient:
    """JSON over the REST API with a tenant API key (``Authorization: Bearer``)."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base = base_url.rstrip("/")
        self.key = key

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(f"{self.base}{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, answer = self.request(method, path, body)
        assert status == expect, f"{method} {path}: {status}, expected {expect}: {answer!r:.2000}"
        return answer

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, body, expect=201)


# --- the Django admin over HTTP ---------------------------------------------------------------------


@dataclass
class _Form:
    attrs: dict[str, str]
    fields: list[tuple[str, str]] = field(default_factory=list)
    names: set[str] = field(default_factory=set)


class _FormParser(html.parser.HTMLParser):
    """The forms of a page with the values a browser would submit (buttons excluded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self._form: _Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = _Form(a)
            self.forms.append(self._form)
            return
        form = self._form
        if form is None or ("name" not in a and tag != "option"):
            return
        if tag == "input":
            kind = a.get("type", "text").lower()
            form.names.add(a["name"])
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            form.fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select":
            self._select = a["name"]
            form.names.add(a["name"])
        elif tag == "option" and self._select is not None and "selected" in a:
            form.fields.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            form.names.add(a["name"])
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            self._form.fields.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None


class AdminClient:
    """A signed-in admin session: GET pages, submit change forms and changelist actions, with the CSRF
    token and cookies handled like a browser behind a TLS proxy does (``X-Forwarded-Proto: https``; the
    session and CSRF cookies are marked Secure in production)."""

    def __init__(self, base_url: str) -> None:
        self.base = urllib.parse.urlsplit(base_url)
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, form: Iterable[tuple[str, str]] | None = None
    ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection(self.base.hostname or "127.0.0.1", self.base.port, timeout=30)
        headers = {"X-Forwarded-Proto": "https", "Host": self.base.netloc}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(list(form)).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"https://{self.base.netloc}{path}"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode(errors="replace")
            for name, value in resp.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key.strip()] = rest.split(";", 1)[0]
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, text
        finally:
            conn.close()

    def get(self, path: str) -> str:
        status, _, text = self.request("GET", path)
        assert status == 200, f"GET {path}: {status}\n{_page_errors(text)}"
        return text

    def login(self, username: str, password: str) -> None:
        path = "/admin/login/?next=/admin/"
        form = self._form(self.get(path), "login-form")
        fields = [(k, v) for k, v in form.fields if k not in ("username", "password")]
        status, headers, text = self.request(
            "POST", path, [*fields, ("username", username), ("password", password)]
        )
        failed = f"admin login as {username} failed: {status}\n{_page_errors(text)}"
        assert status == 302, failed
        assert headers.get("location") == "/admin/", failed

    def change(self, path: str, **changes: str | bool | None) -> None:
        """Open a change form, set ``changes`` (True/False for checkboxes, None to clear) and save it."""
        form = self._form(self.get(path), None)
        missing = sorted(set(changes) - form.names)
        assert not missing, f"the admin form at {path} has no field {', '.join(missing)}"
        fields = [(k, v) for k, v in form.fields if k not in changes]
        for name, value in changes.items():
            if value is True:
                fields.append((name, "on"))
            elif value is not False:
                fields.append((name, "" if value is None else str(value)))
        status, _, text = self.request("POST", path, [*fields, ("_save", "Save")])
        assert status == 302, f"saving {path} with {changes} failed: {status}\n{_page_errors(text)}"

    def selected_ids(self, changelist: str, search: str) -> list[str]:
        """The object ids a changelist search shows (the values of its row checkboxes)."""
        page = self.get(f"{changelist}?{urllib.parse.urlencode({'q': search})}")
        return re.findall(r'name="_selected_action" value="([^"]+)"', page)

    def action(self, changelist: str, action: str, ids: list[str]) -> str:
        """Run a changelist action on the given objects; returns the page's messages."""
        form = self._form(self.get(changelist), "changelist-form")
        token = [(k, v) for k, v in form.fields if k == "csrfmiddlewaretoken"]
        fields = [*token, ("action", action), ("index", "0"), ("select_across", "0")]
        fields += [("_selected_action", i) for i in ids]
        status, _, text = self.request("POST", changelist, fields)
        assert status == 302, f"action {action} on {changelist} failed: {status}\n{_page_errors(text)}"
        return " ".join(
            re.findall(r'<li class="(?:success|info|warning|error)">(.*?)</li>', self.get(changelist))
        )

    @staticmethod
    def _form(page: str, form_id: str | None) -> _Form:
        parser = _FormParser()
        parser.feed(page)
        for form in parser.forms:
            ident = form.attrs.get("id", "")
            if (form_id is None and ident.endswith("_form")) or ident == form_id:
                return form
        raise AssertionError(f"no form {form_id or '*_form'} on the page:\n{_page_errors(page)}")


def _page_errors(page: str) -> str:
    errors = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page, re.DOTALL)
    note = re.findall(r'<p class="errornote">(.*?)</p>', page, re.DOTALL)
    found = [re.sub(r"<[^>]+>", " ", e).strip() for e in [*note, *errors]]
    return "; ".join(found) if found else page[:2000]


# --- OTLP clients ---------------------------------------------------------------------------------------


def sdk_spans(batch: int, count: int, service: str = "fault-test") -> list[ReadableSpan]:
    """``count`` finished SDK spans of one trace, named after the batch, ids unique per batch and index."""
    resource = Resource.create({"service.name": service})
    scope = InstrumentationScope("tests.e2e.faults", "1.0")
    trace_id = int.from_bytes(os.urandom(16), "big") | 1
    now = time.time_ns()
    return [
        ReadableSpan(
            name=f"batch-{batch}",
            context=SpanContext(trace_id, span_id(batch, i), is_remote=False, trace_flags=TraceFlags(1)),
            resource=resource,
            instrumentation_scope=scope,
            attributes={"batch": batch, "index": i},
            kind=SpanKind.INTERNAL,
            start_time=now - 1_000_000,
            end_time=now,
        )
        for i in range(count)
    ]


def error_spans(count: int, service: str, operation: str = "POST /checkout") -> list[ReadableSpan]:
    """``count`` finished SERVER spans of ``service`` with status ERROR, each the root of its own trace:
    requests that failed, as RED figures count them."""
    resource = Resource.create({"service.name": service})
    scope = InstrumentationScope("tests.e2e.alerts", "1.0")
    now = time.time_ns()
    return [
        ReadableSpan(
            name=operation,
            context=SpanContext(
                int.from_bytes(os.urandom(16), "big") | 1,
                int.from_bytes(os.urandom(8), "big") | 1,
                is_remote=False,
                trace_flags=TraceFlags(1),
            ),
            resource=resource,
            instrumentation_scope=scope,
            attributes={"http.request.method": operation.split()[0]},
            kind=SpanKind.SERVER,
            status=Status(StatusCode.ERROR, "upstream answered 503"),
            start_time=now - 20_000_000,
            end_time=now,
        )
        for _ in range(count)
    ]


def span_id(batch: int, index: int) -> int:
    return (batch + 1) << 20 | index


def span_id_hex(batch: int, index: int) -> str:
    return f"{span_id(batch, index):016x}"


def span_exporter(ingestd: Ingestd, key: str, timeout: float = 2.0) -> OTLPSpanExporter:
    """The SDK's own OTLP/gRPC span exporter pointed at ``ingestd``."""
    return OTLPSpanExporter(
        endpoint=ingestd.grpc_target,
        insecure=True,
        headers={"authorization": f"Bearer {key}"},
        timeout=timeout,
    )


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    details: str = ""
    trailers: tuple[tuple[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        return self.code == grpc.StatusCode.OK

    @property
    def retry_delay(self) -> float | None:
        """The RetryInfo delay of the ``grpc-status-details-bin`` trailer (what OTLP senders honour)."""
        from google.rpc import error_details_pb2, status_pb2

        for key, value in self.trailers:
            if key == "grpc-status-details-bin":
                for detail in status_pb2.Status.FromString(value).details:
                    info = error_details_pb2.RetryInfo()
                    if detail.Unpack(info):
                        return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        return None


class GrpcTraces:
    """Raw OTLP/gRPC trace exports on one channel, returning the status instead of retrying like an SDK."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self._call = self.channel.unary_unary(
            TRACE_EXPORT, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString
        )

    def export(self, spans: list[ReadableSpan], key: str, timeout: float = 5.0) -> Outcome:
        payload = encode_spans(spans).SerializeToString()
        try:
            self._call(payload, metadata=[("authorization", f"Bearer {key}")], timeout=timeout)
        except grpc.RpcError as err:
            return Outcome(err.code(), err.details() or "", tuple(err.trailing_metadata() or ()))
        return Outcome(grpc.StatusCode.OK)

    def close(self) -> None:
        self.channel.close()


# --- the stack ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantKeys:
    tenant_id: str
    name: str
    ingest_key: str
    api_key: str

    @property
    def ingest_prefix(self) -> str:
        return self.ingest_key[: len("olly_ing_") + 8]


class ProductionStack:
    def __init__(self, root: Path, database: str, redis_url: str = REDIS_URL) -> None:
        self.root = root
        self.database = database
        self.redis_url = redis_url
        self.secret_key = secrets.token_urlsafe(50)
        self.processes: list[Process] = []
        self.engine: EngineHost | None = None
        self.extra_env: dict[str, str] = {}  # for every process started from now on

    def env(self, var_dir: Path, **extra: str) -> dict[str, str]:
        """The environment of every process of this stack: production settings on this test's database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLYSTACK_", "OTEL_", "DJANGO_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="ollystack.settings.production",
            OLLYSTACK_SECRET_KEY=self.secret_key,
            OLLYSTACK_POSTGRES_DB=self.database,
            OLLYSTACK_POSTGRES_HOST=PG_HOST,
            OLLYSTACK_POSTGRES_PORT=str(PG_PORT),
            OLLYSTACK_POSTGRES_USER=PG_USER,
            OLLYSTACK_REDIS_URL=self.redis_url,
            OLLYSTACK_SECURE_SSL_REDIRECT="false",
            OLLYSTACK_VAR_DIR=str(var_dir),
            PYTHONUNBUFFERED="1",
        )
        if self.engine is not None:
            env["OLLYSTACK_CLICKHOUSE_URL"] = self.engine.url
        env.update(self.extra_env)
        env.update(extra)
        return env

    def manage(self, *args: str, var_dir: Path | None = None, env: dict[str, str] | None = None) -> str:
        """Run a management command to completion; its stdout, or a failure with its output."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env(var_dir or self.root / "cli-var", **(env or {})),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (
            f"manage.py {args[0]} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
        return done.stdout

    def setting(self, name: str, var_dir: Path, env: dict[str, str] | None = None) -> str:
        """A setting as a process of this stack sees it."""
        code = f"from django.conf import settings; print(settings.{name})"
        return (
            self.manage("shell", "--no-imports", "-c", code, var_dir=var_dir, env=env)
            .strip()
            .splitlines()[-1]
        )

    def migrate(self) -> None:
        self.manage("migrate", "--noinput")

    def migrate_clickhouse(self, var_dir: Path) -> None:
        self.manage("migrate_clickhouse", var_dir=var_dir)

    def create_tenant(self, name: str) -> TenantKeys:
        data = json.loads(self.manage("tenant", "create", name, "--json"))
        return TenantKeys(data["tenant_id"], data["name"], data["ingest_key"], data["api_key"])

    def create_superuser(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
        self.manage(
            "createsuperuser",
            "--noinput",
            "--username",
            username,
            "--email",
            f"{username}@example.com",
            env={"DJANGO_SUPERUSER_PASSWORD": password},
        )

    def clickhouse_query(
        self, var_dir: Path, sql: str, params: dict[str, str] | None = None, env: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Rows of ``manage.py clickhouse_query`` (JSONEachRow) against the engine of ``var_dir``."""
        args = [f"--param={k}={v}" for k, v in (params or {}).items()]
        out = self.manage("clickhouse_query", sql, "--format", "JSONEachRow", *args, var_dir=var_dir, env=env)
        return [json.loads(line) for line in out.splitlines() if line]

    def ingestd(self, name: str = "ingestd", migrated: bool = True, **env: str) -> Ingestd:
        """A daemon (not started yet) with its own var directory, its ClickHouse schema applied first
        (with an engine host, the daemon writes there: the host's schema is applied by ``engine_host``)."""
        daemon = Ingestd(self, name, self.root / f"{name}-var", env)
        if migrated and self.engine is None:
            self.migrate_clickhouse(daemon.var_dir)
        self.processes.append(daemon)
        return daemon

    def web(self) -> Web:
        web = Web(self)
        self.processes.append(web)
        return web

    def engine_host(self, timeout: float = 60.0) -> EngineHost:
        """Start the engine host and apply the ClickHouse schema through it; every process started from
        now on uses it (``OLLYSTACK_CLICKHOUSE_URL``)."""
        assert self.engine is None, "the stack has an engine host already"
        engine = EngineHost(self)
        self.processes.append(engine)
        engine.start(timeout)
        self.engine = engine
        self.migrate_clickhouse(self.root / "cli-var")
        return engine

    def celery_worker(self, name: str = "worker", concurrency: int = 2) -> CeleryWorker:
        worker = CeleryWorker(self, name, concurrency)
        self.processes.append(worker)
        return worker

    def celery_beat(self) -> CeleryBeat:
        beat = CeleryBeat(self)
        self.processes.append(beat)
        return beat

    def api_key(self, tenant: TenantKeys, scopes: str = "read,write") -> str:
        """A new API key of ``tenant`` (the one made with the tenant reads only)."""
        out = self.manage("tenant", "create-key", tenant.name, "--kind", "api", "--scopes", scopes, "--json")
        return str(json.loads(out)["key"])

    def drop_database(self) -> None:
        with contextlib.closing(postgres_admin()) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def logs(self) -> str:
        return "\n".join(p.log_text() for p in self.processes if p.logs)

    def close(self) -> None:
        for process in reversed(self.processes):  # the engine host, started first, stops last
            if process.running:
                with contextlib.suppress(AssertionError):
                    process.stop(timeout=15)


@dataclass
class AlertingProfile:
    """Every process of the production profile on one stack, and a tenant with a read-write API key."""

    stack: ProductionStack
    engine: EngineHost
    ingestd: Ingestd
    workers: list[CeleryWorker]
    beat: CeleryBeat
    web: Web
    tenant: TenantKeys
    api: ApiClient

    def send_errors(self, count: int, service: str, operation: str = "POST /checkout") -> None:
        """An error burst through ingestd with the SDK's exporter; fails unless acknowledged."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        exporter = span_exporter(self.ingestd, self.tenant.ingest_key, timeout=10)
        try:
            result = exporter.export(error_spans(count, service, operation))
        finally:
            exporter.shutdown()
        assert result == SpanExportResult.SUCCESS, f"ingestd did not acknowledge the burst: {result}"


def start_alerting(stack: ProductionStack, workers: int = 1, **ingestd_env: str) -> AlertingProfile:
    """The engine host first (everything else reads and writes through it), then ingestd, the Celery
    workers, beat and the web app at once."""
    engine = stack.engine_host()
    daemon = stack.ingestd("ingestd", True, **ingestd_env)
    pool = [stack.celery_worker(f"worker{n}") for n in range(workers)]
    beat, web = stack.celery_beat(), stack.web()
    tenant, *_ = in_parallel(
        lambda: stack.create_tenant("alerting"),
        daemon.start,
        beat.start,
        web.start,
        *[worker.start for worker in pool],
    )
    api = ApiClient(web.url, stack.api_key(tenant))
    return AlertingProfile(stack, engine, daemon, pool, beat, web, tenant, api)


@contextlib.contextmanager
def redis_database(url: str = REDIS_URL) -> Iterator[str]:
    """The URL of a Redis database (1 to 15) that no other stack uses meanwhile: the Celery queue lives in
    the database, and two stacks sharing one would run each other's tasks against the wrong PostgreSQL."""
    import redis

    require_redis(url)
    token = secrets.token_hex(8)
    base = url.rsplit("/", 1)[0]
    for number in range(1, 16):
        client = redis.Redis.from_url(f"{base}/{number}")
        try:
            if client.set(REDIS_CLAIM, token, nx=True, ex=6 * 3600):
                _drop_queues(client)  # tasks a stack killed before its clean-up left behind
                try:
                    yield f"{base}/{number}"
                finally:
                    _drop_queues(client)
                    if client.get(REDIS_CLAIM) == token.encode():
                        client.delete(REDIS_CLAIM)
                return
        finally:
            client.close()
    pytest.fail(f"Redis databases 1-15 at {base} are all claimed by running stacks (key {REDIS_CLAIM})")


def _drop_queues(client: Any) -> None:
    for pattern in ("celery*", "_kombu.*", "unacked*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)


@contextlib.contextmanager
def production_stack(root: Path, *, redis: bool = True, quiet: bool = False) -> Iterator[ProductionStack]:
    """A migrated fresh database and an empty stack (with Redis: a Redis database of its own); on exit
    every process is stopped, its log printed (pytest shows it when the test failed; ``quiet``: only when
    the block raised) and the database dropped."""
    admin = postgres_admin()
    with contextlib.ExitStack() as resources:
        redis_url = resources.enter_context(redis_database()) if redis else REDIS_URL
        database = f"ollystack_e2e_{secrets.token_hex(4)}"
        admin.execute(f'CREATE DATABASE "{database}"')
        stack = ProductionStack(root, database, redis_url)
        failed = True
        try:
            stack.migrate()
            yield stack
            failed = False
        finally:
            try:
                stack.close()
                if failed or not quiet:
                    print(stack.logs())
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                admin.close()


class ExportStream:
    """A thread exporting numbered span batches with the SDK exporter, one after the other, remembering
    which were acknowledged (``SpanExportResult.SUCCESS``). ``pause`` waits until no export is in flight,
    so no retry of a batch can straddle a restart of the daemon."""

    def __init__(self, exporter: OTLPSpanExporter, spans_per_batch: int) -> None:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.exporter = exporter
        self.spans_per_batch = spans_per_batch
        self.success = SpanExportResult.SUCCESS
        self.acked: list[int] = []
        self.failed: list[int] = []
        self.sent = 0
        self._go = threading.Event()
        self._idle = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="export-stream", daemon=True)

    def start(self) -> ExportStream:
        self._go.set()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._go.is_set():
                self._idle.set()
                self._go.wait(0.05)
                continue
            self._idle.clear()
            batch = self.sent
            self.sent += 1
            try:
                acked = self.exporter.export(sdk_spans(batch, self.spans_per_batch)) == self.success
            except Exception:
                acked = False
            (self.acked if acked else self.failed).append(batch)
        self._idle.set()

    def pause(self) -> None:
        self._idle.clear()
        self._go.clear()
        assert self._idle.wait(30), "an export did not finish within 30s"

    def resume(self) -> None:
        self._go.set()

    def stop(self) -> None:
        self._stop.set()
        self._go.set()
        self._thread.join(30)
        self.exporter.shutdown()
