"""WebSocket of one dashboard: ``ws/dashboards/<id>/?tenant=<name>`` (browser session required).

A signed-in member of the tenant joins the dashboard's group (``dashboards.group_name``) and receives
``{"type": "dashboard.changed", "version": n}`` when someone saves it (``dashboard.deleted`` when it goes),
so the page reloads the definition. A page that turns Live on sends ``{"type": "live", "on": true,
"range": <seconds>}``; the server then pushes every panel's data every ``interval`` seconds as
``{"type": "panel.data", "panel": <id>, "version": n, "start", "end", "step", "result" | "error"}``
(computed by ``dashboards.panel_data`` in a worker thread) until ``{"type": "live", "on": false}`` or the
socket closes. Refusals are one ``{"type": "error", "error": ...}`` then close code 4401 (not signed in),
4403 (no access to the tenant) or 4404 (no such dashboard).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async

from ollystack.telemetry import dashboards
from tenants.sockets import CLOSE_NOT_FOUND, MemberSocket

log = logging.getLogger(__name__)

MIN_RANGE_S, MAX_RANGE_S, DEFAULT_RANGE_S = 60, 7 * 86_400, 3_600


class DashboardConsumer(MemberSocket):
    interval = 5.0  # seconds between live rounds
    group: str | None = None
    tenant_id: str = ""
    dashboard_id: int = 0
    live: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        access = await self.member("live dashboards")
        if access is None:
            return
        self.tenant_id = access.tenant_id
        self.dashboard_id = int(self.scope["url_route"]["kwargs"]["dashboard_id"])
        try:
            await database_sync_to_async(dashboards.get_dashboard)(self.tenant_id, self.dashboard_id)
        except dashboards.NotFound:
            await self.refuse(
                CLOSE_NOT_FOUND, f"no dashboard {self.dashboard_id} in tenant {access.tenant_name}"
            )
            return
        self.group = dashboards.group_name(self.tenant_id, self.dashboard_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        self._stop_live()
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.group is None or not isinstance(content, dict) or content.get("type") != "live":
            return
        self._stop_live()
        if content.get("on"):
            seconds = content.get("range")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                seconds = DEFAULT_RANGE_S
            seconds = int(min(max(seconds, MIN_RANGE_S), MAX_RANGE_S))
            self.live = asyncio.get_running_loop().create_task(self._push(seconds))

    async def dashboard_changed(self, event: dict[str, Any]) -> None:
        await self.send_json(event)

    async def dashboard_deleted(self, event: dict[str, Any]) -> None:
        self._stop_live()
        await self.send_json(event)

    async def _push(self, seconds: int) -> None:
        """Every panel's data now, then again every ``interval`` seconds."""
        try:
            while True:
                try:
                    version, panels = await database_sync_to_async(dashboards.dashboard_panels)(
                        self.tenant_id, self.dashboard_id
                    )
                except dashboards.NotFound:
                    await self.send_json({"type": "error", "error": f"dashboard {self.dashboard_id} is gone"})
                    return
                window = dashboards.PanelRange.last(seconds)
                for panel in panels:
                    data = await asyncio.to_thread(dashboards.panel_data, self.tenant_id, panel, window)
                    await self.send_json({"type": "panel.data", "version": version, **data})
                await asyncio.sleep(self.interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "live dashboard stopped tenant=%s dashboard=%s error=%r",
                self.tenant_id,
                self.dashboard_id,
                exc,
            )
            await self.send_json({"type": "error", "error": f"live updates stopped: {exc}"})

    def _stop_live(self) -> None:
        if self.live is not None:
            self.live.cancel()
            self.live = None
