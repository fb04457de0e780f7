"""WebSocket routes of the read side (composed into the ASGI application by ``ollystack.asgi``)."""

from __future__ import annotations

from django.urls import path

from ollystack.telemetry.live.dashboards import DashboardConsumer
from ollystack.telemetry.live.tail import LiveTailConsumer

websocket_urlpatterns = [
    path("ws/logs/tail/", LiveTailConsumer.as_asgi()),
    path("ws/dashboards/<int:dashboard_id>/", DashboardConsumer.as_asgi()),
]
