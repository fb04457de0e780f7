"""`manage.py serve` as a real process: first-start credentials, OTLP in, clean stop, port conflicts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ingest.conftest import trace_request

REPO = Path(__file__).resolve().parents[2]
SERVE = [sys.executable, "manage.py", "serve"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(var_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLLYSTACK_")}
    env.update(
        DJANGO_SETTINGS_MODULE="ollystack.settings.embedded",
        OLLYSTACK_VAR_DIR=str(var_dir),
        OLLYSTACK_HTTP_PORT=str(ports["web"]),
        OLLYSTACK_OTLP_GRPC_PORT=str(ports["otlp_grpc"]),
        OLLYSTACK_OTLP_HTTP_PORT=str(ports["otlp_http"]),
        OLLYSTACK_METRICS_PORT=str(ports["metrics"]),
        OLLYSTACK_BATCH_MAX_DELAY_MS="60000",  # nothing is inserted before the stop: the stop must flush
        PYTHONUNBUFFERED="1",
    )
    return env


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(SERVE, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "listening metrics=" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"serve did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return proc


@pytest.mark.e2e
def test_serve_lifecycle(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("web", "otlp_grpc", "otlp_http", "metrics")}
    env = environment(tmp_path / "var", ports)
    log = tmp_path / "first.log"
    proc = start(env, log)
    try:
        output = log.read_text()
        credentials = json.loads((tmp_path / "var" / "bootstrap.json").read_text())
        assert credentials["ingest_key"] in output
        assert credentials["admin_password"] in output
        assert f"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{ports['otlp_http']}" in output
        for name, port in ports.items():
            assert f"listening {name}=127.0.0.1:{port}" in output
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports['otlp_http']}/v1/traces",
            data=trace_request(spans=5).SerializeToString(),
            headers={
                "Content-Type": "application/x-protobuf",
                "Authorization": f"Bearer {credentials['ingest_key']}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        wal_dir = tmp_path / "var" / "wal" / "traces"
        assert len(list(wal_dir.glob("*.seg"))) == 1

        busy = subprocess.run(
            SERVE,
            cwd=REPO,
            env={**env, "OLLYSTACK_VAR_DIR": str(tmp_path / "other")},
            capture_output=True,
            text=True,
        )
        assert busy.returncode == 1
        assert (
            f"port {ports['web']} on 127.0.0.1 (web) is already in use; stop the other process or set "
            "OLLYSTACK_HTTP_PORT to a free port"
        ) in busy.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert list(wal_dir.glob("*.seg")) == []  # flushed into ClickHouse on the way out
    assert "stopped wal_bytes=0" in log.read_text()

    again = tmp_path / "second.log"
    proc = start(env, again)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    output = again.read_text()
    assert f"Credentials from the first start are in {tmp_path / 'var' / 'bootstrap.json'}" in output
    assert credentials["ingest_key"] not in output
