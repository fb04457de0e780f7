"""WebSocket routes of the alerts app (composed into the ASGI application by ``ollystack.asgi``)."""

from __future__ import annotations

from django.urls import path

from alerts.consumers import AlertStateConsumer

websocket_urlpatterns = [
    path("ws/alerts/", AlertStateConsumer.as_asgi()),
]
