"""The live dashboard socket through the real ASGI application: refusals with their close codes, saves
reaching open pages of that dashboard only, and live panel data pushed until the page turns it off."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from ollystack.asgi import application
from ollystack.clickhouse import Signal
from ollystack.telemetry import dashboards as logic
from ollystack.telemetry.dashboards import DashboardSpec, PanelSpec
from ollystack.telemetry.live.dashboards import DashboardConsumer
from tenants import logic as tenants
from tenants.models import Role
from tests.api.conftest import trace_request

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"http://127.0.0.1:8080"
NS = 1_000_000_000
SQL = "SELECT service_name, count() AS spans FROM spans GROUP BY service_name"


class Socket:
    def __init__(self, dashboard_id: int, query: str, cookie: str | None = None) -> None:
        headers = [(b"host", b"127.0.0.1:8080"), (b"origin", ORIGIN)]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        path = f"/ws/dashboards/{dashboard_id}/"
        scope = {
            "type": "websocket",
            "path": path,
            "raw_path": path.encode(),
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

    async def send(self, message: dict[str, Any]) -> None:
        await self.app.send_input({"type": "websocket.receive", "text": json.dumps(message)})

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        output = await self.app.receive_output(timeout)
        if output["type"] == "websocket.send":
            return dict(json.loads(output["text"]))
        return dict(output)

    async def close(self) -> None:
        await self.app.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.app.wait(5)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()


def member(tenant_id: str, role: str = Role.VIEWER) -> str:
    user = get_user_model().objects.create_user(username=f"u-{uuid.uuid4().hex[:8]}", password="pw-12345678")
    tenants.set_membership(tenant_id, user, role)
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@pytest.fixture
def tenant() -> tenants.TenantCreated:
    return tenants.create_tenant(f"live-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def quick_rounds() -> Iterator[None]:
    before = DashboardConsumer.interval
    DashboardConsumer.interval = 0.2
    yield
    DashboardConsumer.interval = before


def test_refusals_say_why_and_close_with_a_code(tenant: tenants.TenantCreated) -> None:
    other = tenants.create_tenant(f"live-{uuid.uuid4().hex[:8]}")
    theirs = logic.create_dashboard(other.tenant_id, DashboardSpec(name="theirs"))
    cases = [
        (Socket(theirs.id, f"tenant={tenant.name}"), 4401, "sign in first"),
        (Socket(theirs.id, f"tenant={other.name}", member(tenant.tenant_id)), 4403, other.name),
        (
            Socket(theirs.id, f"tenant={tenant.name}", member(tenant.tenant_id)),
            4404,
            f"no dashboard {theirs.id}",
        ),
    ]

    async def scenario() -> None:
        for socket, code, words in cases:
            assert (await socket.connect())["type"] == "websocket.accept"
            message = await socket.receive()
            assert message["type"] == "error"
            assert words in message["error"]
            assert await socket.receive() == {"type": "websocket.close", "code": code}

    run(scenario)


def test_a_save_reaches_the_open_pages_of_that_dashboard(tenant: tenants.TenantCreated) -> None:
    mine = logic.create_dashboard(tenant.tenant_id, DashboardSpec(name="mine"))
    neighbour = logic.create_dashboard(tenant.tenant_id, DashboardSpec(name="neighbour"))
    cookie = member(tenant.tenant_id)
    watching = Socket(mine.id, f"tenant={tenant.name}", cookie)
    elsewhere = Socket(neighbour.id, f"tenant={tenant.name}", cookie)

    async def scenario() -> None:
        assert (await watching.connect())["type"] == "websocket.accept"
        assert (await elsewhere.connect())["type"] == "websocket.accept"
        await sync_to_async(logic.update_dashboard)(tenant.tenant_id, mine.id, DashboardSpec(name="m2"), 1)
        assert await watching.receive() == {"type": "dashboard.changed", "dashboard": mine.id, "version": 2}
        assert await elsewhere.app.receive_nothing(0.3)
        await sync_to_async(logic.delete_dashboard)(tenant.tenant_id, mine.id)
        assert await watching.receive() == {"type": "dashboard.deleted", "dashboard": mine.id}
        await watching.close()
        await elsewhere.close()

    run(scenario)


def test_live_pushes_panel_data_until_turned_off(
    tenant: tenants.TenantCreated, insert_requests: Callable[..., int], quick_rounds: None
) -> None:
    insert_requests(
        Signal.TRACES,
        (tenant.tenant_id, trace_request("checkout", uuid.uuid4().bytes, time.time_ns() - 60 * NS)),
    )
    panels = (
        PanelSpec("Spans", "table", "sql", SQL, id="spans"),
        PanelSpec("Broken", "stat", "sql", "SELECT nope FROM spans", id="broken"),
    )
    board = logic.create_dashboard(tenant.tenant_id, DashboardSpec(name="live", panels=panels))
    socket = Socket(board.id, f"tenant={tenant.name}", member(tenant.tenant_id))

    async def scenario() -> None:
        await socket.connect()
        await socket.send({"type": "live", "on": True, "range": 900})
        rounds = [await socket.receive() for _ in range(4)]  # two rounds of two panels
        assert [m["panel"] for m in rounds] == ["spans", "broken", "spans", "broken"]
        spans = rounds[0]
        assert (spans["type"], spans["version"], spans["end"] - spans["start"]) == ("panel.data", 1, 900)
        assert spans["result"]["rows"] == [["checkout", 2]]
        assert "nope" in rounds[1]["error"]
        await socket.send({"type": "live", "on": False})
        late = 0  # a round already under way may still arrive, nothing after it
        while not await socket.app.receive_nothing(0.5):
            await socket.receive()
            late += 1
            assert late <= 2, "live updates kept coming after the page turned them off"
        await socket.close()

    run(scenario)
