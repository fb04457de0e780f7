"""Webhooks: ``POST`` the channel URL with the notification as JSON, signed with the channel's secret.

Body: ``{"version": "1", "notification_id", "tenant", "tenant_id", "channel", "group_key",
"group_labels", "dedup_key", "status": "firing"|"resolved", "alerts": [{"rule_id", "rule", "series",
"dedup_key", "status", "severity", "labels", "annotations", "value", "threshold", "starts_at", "ends_at",
"event_id", "generator_url", "details"}]}``.

Headers: ``X-OllyStack-Timestamp`` (Unix seconds), ``X-OllyStack-Signature: sha256=<hex>`` where the hex
is HMAC-SHA256(secret, timestamp + "." + raw body) (absent when the channel has no secret), and
``X-OllyStack-Delivery`` (``<notification id>:<dedup key>``, the same on every retry: receivers use it
to ignore a delivery they already processed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from alerts.models import Channel
from alerts.notify.base import SendResult, post_json
from alerts.notify.message import Message

SIGNATURE_HEADER = "X-OllyStack-Signature"
TIMESTAMP_HEADER = "X-OllyStack-Timestamp"
DELIVERY_HEADER = "X-OllyStack-Delivery"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, header: str, tolerance_seconds: float = 300) -> bool:
    """What a receiver does: recompute the signature, compare in constant time, refuse stale timestamps."""
    try:
        if abs(time.time() - int(timestamp)) > tolerance_seconds:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def build(message: Message) -> bytes:
    return json.dumps(message.to_json(), separators=(",", ":"), sort_keys=True).encode()


def headers_for(
    message: Message, channel: Channel, body: bytes, timestamp: str | None = None
) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    headers = {TIMESTAMP_HEADER: timestamp, DELIVERY_HEADER: f"{message.notification_id}:{message.dedup_key}"}
    if channel.secret:
        headers[SIGNATURE_HEADER] = signature(channel.secret, timestamp, body)
    return headers


def send(message: Message, channel: Channel, client: httpx.Client) -> SendResult:
    body = build(message)
    return post_json(client, channel.url, body, headers_for(message, channel, body))
