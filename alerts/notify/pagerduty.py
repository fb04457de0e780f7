"""PagerDuty Events API v2: ``POST https://events.pagerduty.com/v2/enqueue`` (the channel URL overrides).

One event per alert (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/):
trigger: ``{"routing_key", "event_action": "trigger", "dedup_key", "payload": {"summary" (≤ 1024),
"source", "severity" (critical|error|warning|info), "timestamp", "component", "group", "class",
"custom_details"}, "links", "client", "client_url"}``; resolve: ``{"routing_key", "event_action":
"resolve", "dedup_key"}``. The dedup key is stable per alert (tenant, rule, series), so a resolve closes
the incident its trigger opened. PagerDuty answers 202 ``{"status": "success", "dedup_key": …}``.
"""

from __future__ import annotations

from typing import Any

import httpx

from alerts.models import Channel
from alerts.notify.base import ConfigurationError, SendResult, post_json
from alerts.notify.message import Alert, Message

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITIES = ("critical", "error", "warning", "info")


def _event(alert: Alert, message: Message, routing_key: str) -> dict[str, Any]:
    if alert.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.dedup_key}
    labels = alert.labels
    source = (
        labels.get("service") or labels.get("instance") or labels.get("job") or f"ollystack/{message.tenant}"
    )
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_key,
        "payload": {
            "summary": alert.annotations["summary"][:1024],
            "source": source[:255],
            "severity": alert.severity if alert.severity in SEVERITIES else "warning",
            "timestamp": alert.starts_at,
            "component": labels.get("operation") or labels.get("service") or alert.rule,
            "group": message.tenant,
            "class": alert.rule,
            "custom_details": {
                "value": alert.value,
                "threshold": alert.threshold,
                "labels": labels,
                "description": alert.annotations.get("description", ""),
                **({"details": alert.details} if alert.details else {}),
            },
        },
        "links": [{"href": alert.generator_url, "text": f"Rule {alert.rule} in OllyStack"}],
        "client": "OllyStack",
        "client_url": alert.generator_url,
    }


def build(message: Message, channel: Channel) -> list[dict[str, Any]]:
    if not channel.secret:
        raise ConfigurationError(f"PagerDuty channel {channel.name} has no routing key (integration key)")
    return [_event(alert, message, channel.secret) for alert in message.alerts]


def send(message: Message, channel: Channel, client: httpx.Client) -> SendResult:
    url = channel.url or EVENTS_URL
    result = SendResult(True)
    duration = 0.0
    for event in build(message, channel):
        result = post_json(client, url, event)
        duration += result.duration_ms
        if not result.ok:
            break
    return SendResult(
        result.ok, result.status_code, result.error, round(duration, 3), result.permanent, result.retry_after
    )
