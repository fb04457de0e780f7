"""Live alert states over WebSockets: the real ASGI application (origin check, session auth, routing), the
consumer's refusals, and transitions published from another thread reaching the tenant's members only."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from alerts import live
from alerts.logic import RuleSpec, create_rule
from alerts.models import AlertEvent, RedFigure, State
from ollystack.asgi import application
from tenants import logic as tenants
from tenants.models import Role

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"http://127.0.0.1:8080"


class Socket:
    """The client side of one WebSocket connection to the ASGI application."""

    def __init__(self, query: str, cookie: str | None = None, origin: bytes = ORIGIN) -> None:
        headers = [(b"host", b"127.0.0.1:8080"), (b"origin", origin)]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        scope = {
            "type": "websocket",
            "path": "/ws/alerts/",
            "raw_path": b"/ws/alerts/",
            "query_string": query.encode(),
            "headers": headers,
            "subprotocols": [],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080),
        }
        self.app = ApplicationCommunicator(application, scope)

    async def connect(self) -> dict[str, Any]:
        await self.app.send_input({"type": "websocket.connect"})
        return dict(await self.app.receive_output(5))

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        output = await self.app.receive_output(timeout)
        if output["type"] == "websocket.send":
            return dict(json.loads(output["text"]))
        return dict(output)

    async def nothing_within(self, timeout: float) -> bool:
        return bool(await self.app.receive_nothing(timeout))

    async def close(self) -> None:
        await self.app.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.app.wait(5)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run an async scenario from this (sync) test; the ORM calls of the stack run in this thread."""
    async_to_sync(scenario)()


def member(*tenant_ids: str) -> str:
    """A viewer of these tenants, signed in: their session cookie."""
    user = get_user_model().objects.create_user(username=f"u-{uuid.uuid4().hex[:8]}", password="pw-12345678")
    for tenant_id in tenant_ids:
        tenants.set_membership(tenant_id, user, Role.VIEWER)
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def transition(tenant_id: str, name: str = "checkout errors", to_state: str = State.FIRING) -> AlertEvent:
    rule = create_rule(
        tenant_id,
        RuleSpec(
            name=name, service="checkout", red_figure=RedFigure.ERROR_RATE, threshold=0.1, window_seconds=5
        ),
    )
    return AlertEvent.objects.create(
        tenant_id=tenant_id,
        rule=rule,
        labels={"service": "checkout"},
        from_state=State.PENDING,
        to_state=to_state,
        value=0.5,
        threshold=0.1,
        at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


@pytest.fixture
def tenant() -> tenants.TenantCreated:
    return tenants.create_tenant(f"live-{uuid.uuid4().hex[:8]}")


@pytest.fixture(autouse=True)
def no_publishing_loop() -> Any:
    yield
    live.use_loop(None)


def test_members_receive_their_tenants_transitions_published_from_another_thread(
    tenant: tenants.TenantCreated,
) -> None:
    other = tenants.create_tenant(f"live-{uuid.uuid4().hex[:8]}")
    event = transition(tenant.tenant_id)
    foreign = transition(other.tenant_id, name="other tenant's rule")
    socket = Socket(f"tenant={tenant.name}", member(tenant.tenant_id))

    async def scenario() -> None:
        assert (await socket.connect())["type"] == "websocket.accept"
        # the evaluator publishes from its own thread; in `serve` the layer lives in this loop
        live.use_loop(asyncio.get_running_loop())
        await asyncio.to_thread(live.publish, [foreign, event])
        assert await socket.receive() == {
            "type": "alert.state",
            "rule_id": event.rule_id,
            "rule": "checkout errors",
            "series": "",
            "labels": {"service": "checkout"},
            "from": "pending",
            "to": "firing",
            "value": 0.5,
            "at": "2025-01-02T03:04:05+00:00",
        }
        assert await socket.nothing_within(0.2)  # the other tenant's transition did not come here
        await socket.close()

    run(scenario)


def test_rule_names_are_read_when_the_events_come_without_their_rules(tenant: tenants.TenantCreated) -> None:
    event = AlertEvent.objects.get(pk=transition(tenant.tenant_id, to_state=State.RESOLVED).pk)
    socket = Socket(f"tenant={tenant.name}", member(tenant.tenant_id))

    async def scenario() -> None:
        await socket.connect()
        live.use_loop(asyncio.get_running_loop())
        await asyncio.to_thread(live.publish, [event])
        message = await socket.receive()
        assert (message["rule"], message["to"]) == ("checkout errors", "resolved")
        await socket.close()

    run(scenario)


def test_a_signed_out_socket_is_told_to_sign_in_and_closed(tenant: tenants.TenantCreated) -> None:
    socket = Socket(f"tenant={tenant.name}")

    async def scenario() -> None:
        assert (await socket.connect())["type"] == "websocket.accept"
        assert await socket.receive() == {
            "type": "error",
            "error": "sign in first: live alert states need the browser session of a member",
        }
        assert await socket.receive() == {"type": "websocket.close", "code": 4401}

    run(scenario)


def test_a_user_of_another_tenant_is_refused_with_the_reason(tenant: tenants.TenantCreated) -> None:
    other = tenants.create_tenant(f"live-{uuid.uuid4().hex[:8]}")
    socket = Socket(f"tenant={tenant.name}", member(other.tenant_id))

    async def scenario() -> None:
        await socket.connect()
        assert await socket.receive() == {
            "type": "error",
            "error": f"you are not a member of an active tenant named {tenant.name!r}",
        }
        assert (await socket.receive())["code"] == 4403
        # and nothing of that tenant reaches it (published from the loop's own thread: scheduled on it)
        live.publish([await asyncio.to_thread(transition, tenant.tenant_id)])
        assert await socket.nothing_within(0.2)

    run(scenario)


def test_a_member_of_several_tenants_must_choose_one(tenant: tenants.TenantCreated) -> None:
    other = tenants.create_tenant(f"live-{uuid.uuid4().hex[:8]}")
    socket = Socket("", member(tenant.tenant_id, other.tenant_id))

    async def scenario() -> None:
        await socket.connect()
        error = (await socket.receive())["error"]
        assert error.startswith("you belong to several tenants")
        assert error.endswith("add ?tenant=<name>")
        assert (await socket.receive())["code"] == 4403

    run(scenario)


def test_a_socket_from_a_foreign_origin_is_rejected_before_anything_else(
    tenant: tenants.TenantCreated,
) -> None:
    socket = Socket(f"tenant={tenant.name}", member(tenant.tenant_id), origin=b"https://evil.example")

    async def scenario() -> None:
        assert (await socket.connect())["type"] == "websocket.close"

    run(scenario)


def test_publishing_never_fails_the_caller(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tenant: tenants.TenantCreated
) -> None:
    event = transition(tenant.tenant_id)

    class BrokenLayer:
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            raise ConnectionError("channel layer unreachable")

    monkeypatch.setattr(live, "get_channel_layer", lambda: BrokenLayer())
    live.publish([event])  # logged, not raised
    assert "live alert update not published events=1 error=channel layer unreachable" in caplog.text
