"""Slack incoming webhooks: ``POST`` the channel's webhook URL with ``{"text", "blocks"}``.

Block Kit (https://api.slack.com/reference/block-kit/blocks): a ``header`` block (plain_text, at most
150 characters), one ``section`` per alert (mrkdwn text, at most 3 000 characters; at most 10 ``fields``
of 2 000), and a ``context`` block (at most 10 elements). ``text`` is the fallback shown in notifications.
At most 50 blocks per message: larger groups list the first alerts and say how many more there are.
Slack answers ``200 ok``; errors come as 4xx with a short reason (``invalid_payload``, ``no_service``).
"""

from __future__ import annotations

from typing import Any

import httpx

from alerts.models import Channel
from alerts.notify.base import SendResult, post_json
from alerts.notify.message import Message

MAX_ALERTS = 45
_ICON = {
    "critical": ":red_circle:",
    "error": ":large_orange_circle:",
    "warning": ":warning:",
    "info": ":information_source:",
}
_SKIP_LABELS = {"alertname", "severity", "tenant"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build(message: Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(message.title, 150), "emoji": True}}
    ]
    for alert in message.alerts[:MAX_ALERTS]:
        icon = ":white_check_mark:" if alert.status == "resolved" else _ICON.get(alert.severity, ":warning:")
        lines = [
            f"{icon} *<{alert.generator_url}|{alert.rule}>* ({alert.severity})",
            alert.annotations["summary"],
        ]
        if alert.annotations.get("description"):
            lines.append(alert.annotations["description"])
        section: dict[str, Any] = {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut("\n".join(lines), 3000)},
        }
        fields = [
            {"type": "mrkdwn", "text": _cut(f"*{name}*\n{value}", 2000)}
            for name, value in sorted(alert.labels.items())
            if name not in _SKIP_LABELS
        ][:10]
        if fields:
            section["fields"] = fields
        blocks.append(section)
    if len(message.alerts) > MAX_ALERTS:
        more = len(message.alerts) - MAX_ALERTS
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"…and {more} more alerts"}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _cut(f"tenant *{message.tenant}* · channel {message.channel}", 3000),
                },
                {"type": "mrkdwn", "text": f"since {message.alerts[0].starts_at}" if message.alerts else "-"},
            ],
        }
    )
    fallback = message.title + ": " + "; ".join(a.annotations["summary"] for a in message.alerts[:5])
    return {"text": _cut(fallback, 3000), "blocks": blocks}


def send(message: Message, channel: Channel, client: httpx.Client) -> SendResult:
    return post_json(client, channel.url, build(message))
