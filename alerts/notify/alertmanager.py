"""Alertmanager (API v2): ``POST {url}/api/v2/alerts`` with a JSON list of alerts.

Each alert: ``labels`` (alertname = the rule, severity, tenant, the rule's and the series' labels; names
made Prometheus-safe), ``annotations`` (summary, description, value), ``startsAt``, ``endsAt`` and
``generatorURL``. A resolved alert carries its resolve time as ``endsAt``. A firing one carries an
``endsAt`` past the channel's repeat interval: OllyStack re-sends alerts still firing once per interval,
so Alertmanager keeps them active, and resolves them on its own if OllyStack stops sending.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from django.utils import timezone

from alerts.models import Channel
from alerts.notify.base import SendResult, post_json
from alerts.notify.message import Message, iso, label_name


def active_for(channel: Channel) -> timedelta:
    return timedelta(seconds=channel.repeat_interval_seconds * 1.5 + 300)


def build(message: Message, channel: Channel, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or timezone.now()
    alerts = []
    for alert in message.alerts:
        ends_at = alert.ends_at or iso(now + active_for(channel))
        alerts.append(
            {
                "labels": {label_name(name): str(value) for name, value in alert.labels.items()},
                "annotations": dict(alert.annotations),
                "startsAt": alert.starts_at,
                "endsAt": ends_at,
                "generatorURL": alert.generator_url,
            }
        )
    return alerts


def url_for(channel: Channel) -> str:
    return channel.url.rstrip("/") + "/api/v2/alerts"


def send(message: Message, channel: Channel, client: httpx.Client) -> SendResult:
    return post_json(client, url_for(channel), build(message, channel))
