"""End-to-end fixtures: a real `manage.py serve` process on free ports with its own var/ directory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running `serve` process and what a client needs to talk to it."""

    var_dir: Path
    ports: dict[str, int]
    proc: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLYSTACK_", "OTEL_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="ollystack.settings.embedded",
            OLLYSTACK_VAR_DIR=str(self.var_dir),
            OLLYSTACK_HTTP_PORT=str(self.ports["http"]),
            OLLYSTACK_OTLP_GRPC_PORT=str(self.ports["grpc"]),
            OLLYSTACK_OTLP_HTTP_PORT=str(self.ports["otlp_http"]),
            OLLYSTACK_METRICS_PORT=str(self.ports["metrics"]),
            OLLYSTACK_BATCH_MAX_DELAY_MS="50",
            OLLYSTACK_KEY_REFRESH_SECONDS="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def otlp_http(self) -> str:
        return f"http://127.0.0.1:{self.ports['otlp_http']}"

    @property
    def otlp_grpc(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def start(self, timeout: float = 90.0) -> None:
        assert self.proc is None, "already running"
        self.log_path = self.var_dir / f"serve-{len(self.output)}.log"
        self.var_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve"],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.web}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"serve did not become ready in {timeout}s:\n{self.log_text()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.output.append(self.log_text())
        self.proc = None
        return code

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def bootstrap(self) -> dict[str, Any]:
        return json.loads((self.var_dir / "bootstrap.json").read_text())

    def get(self, path: str, key: str) -> tuple[int, Any]:
        req = urllib.request.Request(f"{self.web}{path}", headers={"Authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, body = err.code, err.read()
        return status, json.loads(body)

    def api(self, path: str, key: str, *, expect: int = 200) -> Any:
        status, body = self.get(path, key)
        assert status == expect, f"GET {path}: {status} {body!r:.500}"
        return body

    def create_tenant(self, name: str) -> dict[str, str]:
        done = self.manage("tenant", "create", name, "--json")
        return json.loads(done.stdout)


def make_server(var_dir: Path) -> Server:
    return Server(
        var_dir=var_dir,
        ports={"http": free_port(), "grpc": free_port(), "otlp_http": free_port(), "metrics": free_port()},
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("serve") / "var")
    srv.start()
    yield srv
    if srv.proc is not None:
        srv.stop()


def wait_for(fn: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll until fn() returns a truthy value (ingest is asynchronous after the ack)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
