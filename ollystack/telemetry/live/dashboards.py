"""WebSocket consumer (placeholder until it lands)."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        await self.close(code=4404)
