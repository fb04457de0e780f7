"""WebSocket consumer for live alert states: ``ws/alerts/?tenant=<name>`` (browser session required).

A signed-in member of the tenant joins the tenant's group (``alerts.live.group_name``) and receives every
committed transition as ``{"type": "alert.state", ...}`` (see ``alerts.live``). Anyone else gets one
``{"type": "error", "error": ...}`` message saying what to do, then the socket is closed with code 4401
(not signed in) or 4403 (not a member of that tenant).
"""

from __future__ import annotations

from typing import Any

from alerts import live
from tenants.sockets import MemberSocket


class AlertStateConsumer(MemberSocket):
    group: str | None = None

    async def connect(self) -> None:
        access = await self.member("live alert states")
        if access is None:
            return
        self.group = live.group_name(access.tenant_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The stream is one-way; messages from the client are ignored."""

    async def alert_state(self, event: dict[str, Any]) -> None:
        await self.send_json(event)
