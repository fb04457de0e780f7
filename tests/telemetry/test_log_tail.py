"""Live tail: records inserted after the cursor (whatever their own timestamps), the filters, and the
WebSocket that pushes them to signed-in members only."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from ollystack.asgi import application
from ollystack.clickhouse import Signal
from ollystack.telemetry import log_tail
from ollystack.telemetry.live import tail as live_tail
from ollystack.telemetry.log_tail import TailCursor, TailFilter, poll, snowflake_at, snowflake_ms
from tenants import logic as tenants
from tenants.models import Role

NS = 1_000_000_000
ORIGIN = b"http://127.0.0.1:8080"


def logs_request(*records: tuple[str, int, str, int]) -> ExportLogsServiceRequest:
    """(service, severity number, body, time ns) records."""
    req = ExportLogsServiceRequest()
    for service, number, body, at in records:
        rl = req.resource_logs.add()
        rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
        rl.scope_logs.add().log_records.append(
            LogRecord(time_unix_nano=at, severity_number=number, body=AnyValue(string_value=body))  # type: ignore[arg-type]
        )
    return req


def bodies(records: list[dict[str, Any]]) -> list[str]:
    return [r["body"]["stringValue"] for r in records]


def test_snowflake_ids_carry_the_insert_time(clickhouse: Any) -> None:
    before = time.time_ns() // 1_000_000
    engine_id = int(clickhouse.query("SELECT generateSnowflakeID()").rows[0][0])
    after = time.time_ns() // 1_000_000
    assert before - 5 <= snowflake_ms(engine_id) <= after + 5
    assert snowflake_at(before - 5) <= engine_id < snowflake_at(after + 6)


def test_poll_returns_what_was_inserted_since_the_cursor(
    insert_requests: Callable[..., int], tenant_id: str
) -> None:
    now = time.time_ns()
    insert_requests(Signal.LOGS, (tenant_id, logs_request(("checkout", 9, "before the tail", now))))
    time.sleep(log_tail.LAG_MS / 1000 + 0.05)  # older than the lag the tail looks back
    cursor = TailCursor.now()
    assert poll(tenant_id, TailFilter(), cursor) == []
    insert_requests(
        Signal.LOGS,
        (
            tenant_id,
            logs_request(
                ("checkout", 9, "order placed", now),
                ("payments", 17, "card declined", now),
                ("payments", 9, "stamped ten minutes ago", now - 600 * NS),
                ("payments", 9, "stamped an hour ago", now - 3600 * NS),  # beyond the window
            ),
        ),
    )
    records = poll(tenant_id, TailFilter(), cursor)
    assert sorted(bodies(records)) == ["card declined", "order placed", "stamped ten minutes ago"]
    assert records[0]["resource"]["attributes"]  # the record JSON of /api/v1/logs
    assert poll(tenant_id, TailFilter(), cursor) == []  # each record once, though the lag is read again
    insert_requests(Signal.LOGS, (tenant_id, logs_request(("checkout", 9, "next one", now))))
    assert bodies(poll(tenant_id, TailFilter(), cursor)) == ["next one"]


def test_poll_applies_the_filters_and_the_tenant(insert_requests: Callable[..., int], tenant_id: str) -> None:
    now = time.time_ns()
    cursors = {name: TailCursor.now() for name in ("service", "severity", "text", "other")}
    insert_requests(
        Signal.LOGS,
        (
            tenant_id,
            logs_request(
                ("checkout", 9, "order placed", now),
                ("payments", 17, "card declined by issuer", now),
                ("payments", 13, "issuer slow", now),
            ),
        ),
    )
    assert bodies(poll(tenant_id, TailFilter(service="checkout"), cursors["service"])) == ["order placed"]
    assert bodies(poll(tenant_id, TailFilter(severity_min=17), cursors["severity"])) == [
        "card declined by issuer"
    ]
    assert sorted(bodies(poll(tenant_id, TailFilter(text="issuer"), cursors["text"]))) == [
        "card declined by issuer",
        "issuer slow",
    ]
    assert poll(str(uuid.uuid4()), TailFilter(), cursors["other"]) == []


def test_many_new_records_come_in_insert_order_across_polls(
    insert_requests: Callable[..., int], tenant_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_tail, "MAX_RECORDS", 3)
    now = time.time_ns()
    cursor = TailCursor.now()
    for n in range(7):
        insert_requests(Signal.LOGS, (tenant_id, logs_request(("checkout", 9, f"record {n}", now + n))))
    got = [bodies(poll(tenant_id, TailFilter(), cursor)) for _ in range(4)]
    assert got == [
        ["record 0", "record 1", "record 2"],
        ["record 3", "record 4", "record 5"],
        ["record 6"],
        [],
    ]


# --- the WebSocket -----------------------------------------------------------------------------------------


def member(*tenant_ids: str) -> str:
    """A viewer of these tenants, signed in: their session cookie."""
    user = get_user_model().objects.create_user(username=f"u-{uuid.uuid4().hex[:8]}", password="pw-12345678")
    for tenant_id in tenant_ids:
        tenants.set_membership(tenant_id, user, Role.VIEWER)
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class Socket:
    """The client side of one WebSocket to the real ASGI application (origin check, session auth, routing).

    channels.testing.WebsocketCommunicator would do, but its package imports daphne, which is not installed.
    """

    def __init__(self, query: str, cookie: str | None = None) -> None:
        headers = [(b"host", b"127.0.0.1:8080"), (b"origin", ORIGIN)]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        scope = {
            "type": "websocket",
            "path": "/ws/logs/tail/",
            "raw_path": b"/ws/logs/tail/",
            "query_string": query.encode(),
            "headers": headers,
            "subprotocols": [],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080),
        }
        self.app = ApplicationCommunicator(application, scope)

    async def connect(self) -> bool:
        await self.app.send_input({"type": "websocket.connect"})
        return bool((await self.app.receive_output(5))["type"] == "websocket.accept")

    async def receive_json_from(self, timeout: float = 5) -> dict[str, Any]:
        output = await self.app.receive_output(timeout)
        assert output["type"] == "websocket.send", output
        return dict(json.loads(output["text"]))

    async def receive_output(self, timeout: float = 5) -> dict[str, Any]:
        return dict(await self.app.receive_output(timeout))

    async def receive_nothing(self, timeout: float) -> bool:
        return bool(await self.app.receive_nothing(timeout))

    async def disconnect(self) -> None:
        await self.app.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.app.wait(5)


def socket(query: str, cookie: str | None = None) -> Socket:
    return Socket(query, cookie)


@pytest.fixture
def tenant(transactional_db: None) -> tenants.TenantCreated:
    return tenants.create_tenant(f"tail-{uuid.uuid4().hex[:8]}")


def test_a_signed_out_socket_is_told_to_sign_in_and_closed(tenant: tenants.TenantCreated) -> None:
    async def scenario() -> None:
        ws = socket(f"tenant={tenant.name}")
        assert await ws.connect()
        assert await ws.receive_json_from() == {
            "type": "error",
            "error": "sign in first: live log records need the browser session of a member",
        }
        assert (await ws.receive_output())["code"] == 4401

    async_to_sync(scenario)()


def test_a_user_of_another_tenant_is_refused_with_the_reason(tenant: tenants.TenantCreated) -> None:
    other = tenants.create_tenant(f"tail-{uuid.uuid4().hex[:8]}")
    cookie = member(other.tenant_id)

    async def scenario() -> None:
        ws = socket(f"tenant={tenant.name}", cookie)
        await ws.connect()
        assert await ws.receive_json_from() == {
            "type": "error",
            "error": f"you are not a member of an active tenant named {tenant.name!r}",
        }
        assert (await ws.receive_output())["code"] == 4403
        assert live_tail.feed_count() == 0

    async_to_sync(scenario)()


def test_a_malformed_filter_is_named(tenant: tenants.TenantCreated) -> None:
    cookie = member(tenant.tenant_id)

    async def scenario() -> None:
        ws = socket(f"tenant={tenant.name}&severity=LOUD", cookie)
        await ws.connect()
        error = (await ws.receive_json_from())["error"]
        assert error.startswith("severity: 'LOUD' is not a severity")
        assert (await ws.receive_output())["code"] == 4400

    async_to_sync(scenario)()


def test_members_receive_new_matching_records_and_sockets_share_a_feed(
    tenant: tenants.TenantCreated, insert_requests: Callable[..., int]
) -> None:
    cookie = member(tenant.tenant_id)
    other = tenants.create_tenant(f"tail-{uuid.uuid4().hex[:8]}")
    now = time.time_ns()

    async def scenario() -> None:
        first = socket(f"tenant={tenant.name}&severity=ERROR", cookie)
        second = socket(f"tenant={tenant.name}&severity=error", cookie)
        assert await first.connect()
        assert await second.connect()
        assert live_tail.feed_count() == 1  # the same filters: one query per tick for both
        await asyncio.to_thread(
            insert_requests,
            Signal.LOGS,
            (tenant.tenant_id, logs_request(("payments", 9, "fine", now), ("payments", 17, "declined", now))),
            (other.tenant_id, logs_request(("payments", 17, "someone else's", now))),
        )
        for ws in (first, second):
            message = await ws.receive_json_from(timeout=5)
            assert message["type"] == "logs"
            assert bodies(message["records"]) == ["declined"]
            assert await ws.receive_nothing(0.5)
        await first.disconnect()
        await second.disconnect()
        assert live_tail.feed_count() == 0  # the last socket gone: the feed stops polling

    async_to_sync(scenario)()
