"""Alerting end to end in the embedded profile: one real `manage.py serve` process, no broker, no workers.

A rule and a webhook channel made through the REST API; an error burst sent with the OpenTelemetry SDK's
own OTLP/HTTP exporter; the webhook (a real local HTTP server) receives the signed firing notification, a
signed-in browser session's WebSocket sees the transition live; healthy traffic afterwards resolves the
alert, notified and pushed the same way.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from alerts.notify.webhook import verify
from tests.alerts.recorder import RecordedRequest, Recorder
from tests.e2e.conftest import Server, make_server, wait_for
from tests.e2e.production import AdminClient, ApiClient

pytestmark = pytest.mark.e2e

SECRET = "e2e-webhook-secret"
SERVICE = "checkout"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("alerts") / "var")
    server.start()
    yield server
    if server.proc is not None:
        assert server.stop() == 0, server.output[-1]


class Traffic:
    """The SDK as an instrumented service uses it: a tracer provider exporting over OTLP/HTTP in batches."""

    def __init__(self, server: Server, ingest_key: str) -> None:
        exporter = OTLPSpanExporter(
            endpoint=f"{server.otlp_http}/v1/traces", headers={"Authorization": f"Bearer {ingest_key}"}
        )
        self.provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("tests.e2e.alerts")

    def requests(self, count: int, failed: bool) -> None:
        for _ in range(count):
            with self.tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as span:
                if failed:
                    span.set_status(Status(StatusCode.ERROR, "payment service answered 503"))
        assert self.provider.force_flush(10_000), "the OTLP exporter did not flush"

    def close(self) -> None:
        self.provider.shutdown()


class LiveStates:
    """A browser's WebSocket on ws/alerts/: every message it gets, in order, from a reader thread."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for raw in self.socket:
                self.messages.put(json.loads(raw))
        except ConnectionClosed:
            pass

    def next_change(self, timeout: float = 30) -> dict[str, Any]:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no live alert state within {timeout}s") from None

    def close(self) -> None:
        self.socket.close()
        self._reader.join(5)


@contextlib.contextmanager
def live_states(server: Server, session_cookie: str, tenant: str) -> Iterator[LiveStates]:
    with connect(
        f"ws://127.0.0.1:{server.ports['http']}/ws/alerts/?tenant={tenant}",
        origin=Origin(server.web),
        additional_headers={"Cookie": session_cookie},
        open_timeout=10,
    ) as socket:
        live = LiveStates(socket)
        try:
            yield live
        finally:
            live.close()


def notifications(target: Recorder, status: str) -> list[RecordedRequest]:
    return [r for r in target.requests if r.json and r.json.get("status") == status]


@contextlib.contextmanager
def log_on_failure(server: Server) -> Iterator[None]:
    """A failed assertion carries what the serve process logged meanwhile."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- serve log ---\n{server.log_text()[-20000:]}") from exc


def test_an_error_burst_fires_notifies_live_and_resolves(serve: Server) -> None:
    with log_on_failure(serve):
        burst_fires_and_resolves(serve)


def burst_fires_and_resolves(serve: Server) -> None:
    boot = serve.bootstrap()
    made = serve.manage(
        "tenant", "create-key", boot["tenant"], "--kind", "api", "--scopes", "read,write", "--json"
    )
    api = ApiClient(serve.web, json.loads(made.stdout)["key"])
    browser = AdminClient(serve.web)
    browser.login(boot["admin_username"], boot["admin_password"])
    cookie = f"sessionid={browser.cookies['sessionid']}"

    with Recorder() as target:
        channel = api.post(
            "/api/v1/alerts/channels",
            {"name": "on-call hook", "kind": "webhook", "url": target.url, "secret": SECRET},
        )
        rule = api.post(
            "/api/v1/alerts/rules",
            {
                "name": "checkout failing",
                "service": SERVICE,
                "red_figure": "error_rate",
                "comparator": ">",
                "threshold": 0.2,
                "window_seconds": 5,
                "severity": "critical",
                "channels": [channel["id"]],
            },
        )
        traffic = Traffic(serve, boot["ingest_key"])
        with live_states(serve, cookie, boot["tenant"]) as live:
            traffic.requests(20, failed=True)

            firing = target.wait_for(1, timeout=30)[0]
            assert firing.path == "/"
            assert verify(
                SECRET,
                firing.headers["x-ollystack-timestamp"],
                firing.body,
                firing.headers["x-ollystack-signature"],
            )
            assert (firing.json["status"], firing.json["tenant"]) == ("firing", boot["tenant"])
            [alert] = firing.json["alerts"]
            assert (alert["rule"], alert["severity"], alert["value"]) == ("checkout failing", "critical", 1.0)
            assert alert["labels"]["alertname"] == "checkout failing"

            change = live.next_change()
            assert {k: change[k] for k in ("type", "rule_id", "rule", "from", "to", "value")} == {
                "type": "alert.state",
                "rule_id": rule["id"],
                "rule": "checkout failing",
                "from": "inactive",
                "to": "firing",
                "value": 1.0,
            }

            # the errors stop; healthy requests go on until the burst has left the 5 s window
            def resolved() -> list[RecordedRequest]:
                traffic.requests(5, failed=False)
                return notifications(target, "resolved")

            [resolution] = wait_for(resolved, timeout=40, interval=0.5)
            assert resolution.headers["x-ollystack-delivery"] != firing.headers["x-ollystack-delivery"]
            assert (
                resolution.json["alerts"][0]["dedup_key"] == alert["dedup_key"]
            )  # pairs with the firing one
            change = live.next_change()
            assert (change["rule_id"], change["from"], change["to"]) == (rule["id"], "firing", "resolved")
            assert change["value"] <= 0.2
        traffic.close()

        assert len(notifications(target, "firing")) == 1  # one notification per transition, no repeats
        assert len(notifications(target, "resolved")) == 1

    events = api.get(f"/api/v1/alerts/events?rule={rule['id']}")["events"]
    assert [(e["from_state"], e["to_state"]) for e in reversed(events)] == [
        ("inactive", "firing"),
        ("firing", "resolved"),
    ]
    delivered = api.get(f"/api/v1/alerts/notifications?rule={rule['id']}")["notifications"]
    assert [n["status"] for n in delivered] == ["delivered", "delivered"]


def test_a_websocket_without_a_session_is_refused_with_the_reason(serve: Server) -> None:
    with connect(
        f"ws://127.0.0.1:{serve.ports['http']}/ws/alerts/?tenant=default",
        origin=Origin(serve.web),
        open_timeout=10,
    ) as socket:
        assert json.loads(socket.recv(timeout=10)) == {
            "type": "error",
            "error": "sign in first: live alert states need the browser session of a member",
        }
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


def test_stopping_serve_stops_the_alert_threads_cleanly(serve: Server, tmp_path: Path) -> None:
    assert "alert scheduler started evaluation_seconds=1.0" in serve.log_text()
    assert serve.stop() == 0
    log = serve.output[-1]
    assert "alert scheduler stopped" in log
    assert "still running at stop" not in log
    assert "Traceback" not in log
