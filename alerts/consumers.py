"""WebSocket consumer for live alert states: ``ws/alerts/?tenant=<name>`` (browser session required).

A signed-in member of the tenant joins the tenant's group (``alerts.live.group_name``) and receives every
committed transition as ``{"type": "alert.state", ...}`` (see ``alerts.live``). Anyone else gets one
``{"type": "error", "error": ...}`` message saying what to do, then the socket is closed with code 4401
(not signed in) or 4403 (not a member of that tenant).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from alerts import live
from tenants.logic import Permission, TenantAccess, TenantAccessDenied, TenantAmbiguous, access_for_user

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class AlertStateConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(
                CLOSE_UNAUTHENTICATED, "sign in first: live alert states need a browser session of a member"
            )
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        tenant_name = (query.get("tenant") or [""])[0] or None
        try:
            access: TenantAccess = await database_sync_to_async(access_for_user)(user, tenant_name)
        except (TenantAccessDenied, TenantAmbiguous) as exc:
            await self._refuse(CLOSE_FORBIDDEN, str(exc))
            return
        if not access.allows(Permission.READ):
            await self._refuse(
                CLOSE_FORBIDDEN, f"your role cannot read alerts of tenant {access.tenant_name}"
            )
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

    async def _refuse(self, code: int, error: str) -> None:
        await self.accept()
        await self.send_json({"type": "error", "error": error})
        await self.close(code=code)
