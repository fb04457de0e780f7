"""Slack, PagerDuty, webhook and email notifiers: what they send, checked against the providers' formats."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core import mail

from alerts.models import ChannelKind, Notification, NotificationStatus, State
from alerts.notify import outbox, send_test
from alerts.notify.dispatch import deliver_due
from alerts.notify.webhook import signature, verify
from tests.alerts.notify_factories import T0, make_channel, make_rule, make_tenant, transition
from tests.alerts.recorder import Recorder, Reply

pytestmark = pytest.mark.django_db

ROUTING_KEY = "R0ut1ngK3yR0ut1ngK3yR0ut1ngK3y12"  # 32 characters, like a PagerDuty integration key


@pytest.fixture
def target() -> Iterator[Recorder]:
    with Recorder() as recorder:
        yield recorder


def _iso8601(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- Slack --------------------------------------------------------------------------------------------


def check_slack_message(body: dict[str, Any]) -> None:
    """Slack incoming webhook message with Block Kit blocks.

    https://api.slack.com/messaging/webhooks and https://api.slack.com/reference/block-kit/blocks:
    ``text`` (fallback) and ``blocks`` (at most 50); header: ``text`` a plain_text object of at most 150
    characters; section: ``text`` a text object of at most 3 000 characters, ``fields`` at most 10 text
    objects of at most 2 000 characters; context: ``elements`` at most 10 image or text objects. A text
    object is ``{"type": "plain_text"|"mrkdwn", "text": str}`` (``emoji`` only on plain_text).
    """
    assert isinstance(body["text"], str)
    assert body["text"]
    blocks = body["blocks"]
    assert 1 <= len(blocks) <= 50

    def text_object(
        obj: dict[str, Any], limit: int, kinds: tuple[str, ...] = ("plain_text", "mrkdwn")
    ) -> None:
        assert obj["type"] in kinds
        assert isinstance(obj["text"], str)
        assert 1 <= len(obj["text"]) <= limit
        if "emoji" in obj:
            assert obj["type"] == "plain_text"

    for block in blocks:
        assert block["type"] in ("header", "section", "context", "divider")
        if block["type"] == "header":
            text_object(block["text"], 150, ("plain_text",))
        elif block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                text_object(block["text"], 3000)
            for field in block.get("fields", []):
                text_object(field, 2000)
            assert len(block.get("fields", [])) <= 10
        elif block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
            for element in block["elements"]:
                text_object(element, 3000)


def test_slack_message_follows_block_kit(target: Recorder) -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.SLACK, target.url + "/services/T000/B000/XXXX")
    rule = make_rule(
        tenant, channel, name="x" * 190, labels={"team": "payments"}, description="Payments fail."
    )
    outbox.enqueue([transition(rule, State.FIRING, labels={"region": "eu"})], now=T0)
    assert deliver_due(T0).delivered == 1
    [request] = target.requests
    assert request.path == "/services/T000/B000/XXXX"
    assert request.headers["content-type"] == "application/json"
    check_slack_message(request.json)
    assert request.json["blocks"][0]["type"] == "header"
    assert request.json["blocks"][0]["text"]["text"].endswith("…")  # a long rule name is cut to 150
    section = request.json["blocks"][1]["text"]["text"]
    assert "Payments fail." in section
    assert "error rate is 0.25" in section
    fields = [f["text"] for f in request.json["blocks"][1]["fields"]]
    assert "*region*\neu" in fields
    assert "*team*\npayments" in fields


def test_slack_large_group_stays_within_block_limits(target: Recorder) -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.SLACK, target.url)
    rule = make_rule(tenant, channel)
    labels = {f"label{i}": "v" for i in range(15)}
    outbox.enqueue([transition(rule, State.FIRING, series=str(i), labels=labels) for i in range(60)], now=T0)
    assert deliver_due(T0).delivered == 1
    body = target.requests[0].json
    check_slack_message(body)
    assert "and 15 more alerts" in json.dumps(body)


def test_slack_error_does_not_leak_the_webhook_url(target: Recorder) -> None:
    target.script(Reply(404, "no_service"))
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.SLACK, target.url + "/services/T000/B000/SECRET")
    rule = make_rule(tenant, channel)
    [notification] = outbox.enqueue([transition(rule, State.FIRING)], now=T0)
    assert deliver_due(T0).failed == 1
    notification.refresh_from_db()
    assert notification.last_error == f"{target.url} answered HTTP 404: no_service"
    assert "SECRET" not in notification.last_error


# --- PagerDuty ----------------------------------------------------------------------------------------


def check_pagerduty_event(event: dict[str, Any]) -> None:
    """PagerDuty Events API v2 event (https://developer.pagerduty.com/api-reference/368ae3d938c9e-send-an-event-to-pager-duty).

    Required: ``routing_key`` (32 characters), ``event_action`` (trigger | acknowledge | resolve);
    ``dedup_key`` at most 255 characters (required for acknowledge/resolve). A trigger needs ``payload``
    with ``summary`` (≤ 1024), ``source`` and ``severity`` (critical | error | warning | info); optional
    ``timestamp`` (ISO 8601), ``component``, ``group``, ``class``, ``custom_details`` (object). Optional
    ``links`` [{href, text}], ``images``, ``client``, ``client_url``.
    """
    assert set(event) <= {
        "routing_key",
        "event_action",
        "dedup_key",
        "payload",
        "links",
        "images",
        "client",
        "client_url",
    }
    assert len(event["routing_key"]) == 32
    assert event["event_action"] in ("trigger", "acknowledge", "resolve")
    assert 1 <= len(event["dedup_key"]) <= 255
    if event["event_action"] != "trigger":
        return
    payload = event["payload"]
    assert set(payload) <= {
        "summary",
        "source",
        "severity",
        "timestamp",
        "component",
        "group",
        "class",
        "custom_details",
    }
    assert 1 <= len(payload["summary"]) <= 1024
    assert payload["source"]
    assert payload["severity"] in ("critical", "error", "warning", "info")
    _iso8601(payload["timestamp"])
    assert isinstance(payload.get("custom_details", {}), dict)
    for link in event.get("links", []):
        assert set(link) <= {"href", "text"}
        assert link["href"].startswith("http")


def test_pagerduty_trigger_and_resolve_pair_up(target: Recorder) -> None:
    accepted = {"status": "success", "message": "Event processed", "dedup_key": "x"}
    target.script(Reply(202, accepted), Reply(202, accepted))
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.PAGERDUTY, target.url + "/v2/enqueue", secret=ROUTING_KEY)
    rule = make_rule(tenant, channel, severity="error", log_query="", description="d" * 2000)
    outbox.enqueue([transition(rule, State.FIRING, series="s", labels={"region": "eu"})], now=T0)
    assert deliver_due(T0).delivered == 1
    later = T0 + timedelta(minutes=5)
    outbox.enqueue(
        [transition(rule, State.RESOLVED, at=later, series="s", labels={"region": "eu"})], now=later
    )
    assert deliver_due(later).delivered == 1

    trigger, resolve = (r.json for r in target.requests)
    for event in (trigger, resolve):
        check_pagerduty_event(event)
    assert target.requests[0].path == "/v2/enqueue"
    assert trigger["event_action"] == "trigger"
    assert trigger["payload"]["severity"] == "error"
    assert trigger["payload"]["source"] == "checkout"
    assert trigger["payload"]["group"] == tenant.name
    assert trigger["payload"]["class"] == rule.name
    assert trigger["payload"]["custom_details"]["labels"]["region"] == "eu"
    assert trigger["payload"]["custom_details"]["value"] == 0.25
    assert trigger["client"] == "OllyStack"
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }


def test_pagerduty_group_sends_one_event_per_alert(target: Recorder) -> None:
    target.default = Reply(202, {"status": "success"})
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.PAGERDUTY, target.url, secret=ROUTING_KEY)
    rule = make_rule(tenant, channel, name="n" * 200, log_query="w" * 500, source="logs", service="")
    outbox.enqueue([transition(rule, State.FIRING, series=s) for s in ("a", "b")], now=T0)
    assert deliver_due(T0).delivered == 1
    events = [r.json for r in target.requests]
    for event in events:
        check_pagerduty_event(event)
    assert len({e["dedup_key"] for e in events}) == 2
    assert all(e["payload"]["source"] == f"ollystack/{tenant.name}" for e in events)


def test_pagerduty_without_routing_key_fails_saying_so(target: Recorder) -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.PAGERDUTY, target.url)
    rule = make_rule(tenant, channel)
    [notification] = outbox.enqueue([transition(rule, State.FIRING)], now=T0)
    assert deliver_due(T0).failed == 1
    notification.refresh_from_db()
    assert notification.last_error == f"PagerDuty channel {channel.name} has no routing key (integration key)"
    assert target.requests == []


# --- Webhook ------------------------------------------------------------------------------------------


def test_webhook_body_and_signature_verify(target: Recorder) -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.WEBHOOK, target.url + "/in", secret="s3cret")
    rule = make_rule(tenant, channel)
    [notification] = outbox.enqueue([transition(rule, State.FIRING, series="s")], now=T0)
    deliver_due(T0)
    [request] = target.requests
    timestamp = request.headers["x-ollystack-timestamp"]
    header = request.headers["x-ollystack-signature"]
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", header)
    assert verify("s3cret", timestamp, request.body, header)
    assert not verify("wrong", timestamp, request.body, header)
    assert not verify("s3cret", timestamp, request.body + b" ", header)
    assert not verify(
        "s3cret",
        str(int(timestamp) - 3600),
        request.body,
        signature("s3cret", str(int(timestamp) - 3600), request.body),
    )
    assert request.headers["x-ollystack-delivery"] == f"{notification.pk}:{notification.dedup_key}"
    body = request.json
    assert body["version"] == "1"
    assert (body["tenant"], body["tenant_id"], body["status"]) == (tenant.name, str(tenant.pk), "firing")
    assert body["group_key"] == notification.group_key
    assert body["notification_id"] == notification.pk
    [alert] = body["alerts"]
    assert alert["dedup_key"] == f"ollystack:{tenant.pk}:{rule.pk}:s"
    assert alert["labels"]["alertname"] == rule.name
    assert (alert["status"], alert["value"], alert["threshold"], alert["ends_at"]) == (
        "firing",
        0.25,
        0.05,
        None,
    )


def test_signature_matches_the_documented_recipe() -> None:
    """The receiver-side snippet in docs/alerts.md: hex HMAC-SHA256 over timestamp + "." + body."""
    import hashlib
    import hmac

    body = b'{"status":"firing"}'
    expected = hmac.new(b"key", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("key", "1700000000", body) == f"sha256={expected}"


def test_webhook_without_secret_is_not_signed(target: Recorder) -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.WEBHOOK, target.url)
    assert send_test(channel).ok
    [request] = target.requests
    assert "x-ollystack-signature" not in request.headers
    assert request.json["alerts"][0]["rule"] == "OllyStack test notification"


# --- Email --------------------------------------------------------------------------------------------


def test_email_has_text_and_html_parts() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.EMAIL, recipients="oncall@example.com,\nlead@example.com")
    rule = make_rule(tenant, channel, name="checkout <errors>", description="Payments fail.")
    outbox.enqueue([transition(rule, State.FIRING, labels={"region": "eu"})], now=T0)
    assert deliver_due(T0).delivered == 1
    [message] = mail.outbox
    assert message.to == ["oncall@example.com", "lead@example.com"]
    assert message.subject == f"[FIRING:1] checkout <errors> ({tenant.name})"
    assert "checkout <errors>: checkout error rate is 0.25" in message.body
    assert "region=eu" in message.body
    assert "Payments fail." in message.body
    [(html, mimetype)] = message.alternatives  # type: ignore[attr-defined]
    assert mimetype == "text/html"
    assert "checkout &lt;errors&gt;" in html
    assert "<errors>" not in html


def test_email_resolved_says_when() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.EMAIL, recipients="oncall@example.com")
    rule = make_rule(tenant, channel)
    later = T0 + timedelta(minutes=2)
    outbox.enqueue([transition(rule, State.RESOLVED, at=later)], now=later)
    deliver_due(later)
    [message] = mail.outbox
    assert message.subject.startswith("[RESOLVED:1]")
    assert "resolved 2026-03-02T12:02:00Z" in message.body


def test_email_without_recipients_fails_permanently() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.EMAIL)
    result = send_test(channel)
    assert not result.ok
    assert result.permanent
    assert result.error == f"email channel {channel.name} has no recipients"
    rule = make_rule(tenant, channel)
    outbox.enqueue([transition(rule, State.FIRING)], now=T0)
    deliver_due(T0)
    assert Notification.objects.get(channel=channel).status == NotificationStatus.FAILED
