"""Deliver queued notifications: claim, apply silences and mute windows, send, record, retry.

Several dispatchers may run at once (Celery workers, the in-process scheduler): a notification is claimed
by moving it to SENDING with a lease (row locks with SKIP LOCKED where the database has them, and a
conditional update everywhere), so exactly one of them sends it; a lease that expires (its dispatcher died)
makes it claimable again. Per group, notifications are delivered in the order they were queued: a resolve
never overtakes the trigger it resolves while that one is still being retried.

Failed attempts are retried after ``RETRY_BASE·2^(attempts-1)`` seconds (at most ``RETRY_MAX``, plus up to
10 % jitter; a 429/503 ``Retry-After`` is honoured) until the channel's ``max_attempts``; a 4xx other than
408/429 fails at once. Every attempt is a DeliveryAttempt row; the last error stays on the notification.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from alerts.models import Channel, ChannelKind, DeliveryAttempt, Notification, NotificationStatus, Silence
from alerts.notify import alertmanager, mail, pagerduty, slack, webhook
from alerts.notify.base import ConfigurationError, SendResult, timeout_seconds
from alerts.notify.message import PAYLOAD_VERSION, Alert, Message, alert_dedup_key, iso, public_url
from alerts.notify.outbox import enqueue_reminders
from alerts.notify.silences import active_silences, in_mute_window, silenced_by

log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 30
REMINDER_EVERY_SECONDS = 30
MAX_PARALLEL_SENDS = 8

_client: httpx.Client | None = None
_client_lock = threading.Lock()
_last_reminders = 0.0


@dataclass(frozen=True)
class DeliveryReport:
    claimed: int
    delivered: int
    retried: int
    failed: int
    silenced: int
    muted: int
    reminders: int
    seconds: float


def http_client() -> httpx.Client:
    """One pooled client per process (thread-safe); timeouts are set per request."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=32))
        return _client


def send_message(message: Message, channel: Channel, client: httpx.Client | None = None) -> SendResult:
    """Send ``message`` to ``channel`` with its kind's notifier; never raises."""
    client = client or http_client()
    senders: dict[str, Callable[[], SendResult]] = {
        ChannelKind.ALERTMANAGER: lambda: alertmanager.send(message, channel, client),
        ChannelKind.SLACK: lambda: slack.send(message, channel, client),
        ChannelKind.PAGERDUTY: lambda: pagerduty.send(message, channel, client),
        ChannelKind.WEBHOOK: lambda: webhook.send(message, channel, client),
        ChannelKind.EMAIL: lambda: mail.send(message, channel),
    }
    sender = senders.get(channel.kind)
    if sender is None:
        return SendResult(False, error=f"unknown channel kind {channel.kind!r}", permanent=True)
    try:
        return sender()
    except ConfigurationError as error:
        return SendResult(False, error=str(error), permanent=True)
    except Exception as error:  # a notifier bug must not stop the other deliveries
        log.exception(
            "alert notifier failed tenant=%s channel=%s kind=%s", channel.tenant_id, channel.pk, channel.kind
        )
        return SendResult(False, error=f"{type(error).__name__}: {error}")


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones."""
    base = float(settings.OLLYSTACK_ALERT_RETRY_BASE_SECONDS)
    ceiling = float(settings.OLLYSTACK_ALERT_RETRY_MAX_SECONDS)
    if retry_after is not None:
        return min(max(retry_after, 0.0), ceiling)
    delay = min(base * 2 ** max(attempts - 1, 0), ceiling)
    return delay + random.uniform(0, delay * 0.1)


def deliver_due(now: datetime | None = None, limit: int = 100) -> DeliveryReport:
    """Deliver up to ``limit`` notifications that are due at ``now``."""
    global _last_reminders
    started = time.monotonic()
    now = now or timezone.now()
    reminders = 0
    if started - _last_reminders >= REMINDER_EVERY_SECONDS:
        _last_reminders = started
        reminders = len(enqueue_reminders(now))
    claimed = _claim(now, limit)
    counts = {status: 0 for status in NotificationStatus.values}
    retried = 0
    to_send: list[tuple[Notification, Message]] = []
    silences: dict[Any, list[Silence]] = {}
    for notification in claimed:
        channel = notification.channel
        message = Message.from_json(notification.payload, notification.pk)
        if not channel.enabled:
            _finish(notification, NotificationStatus.FAILED, f"channel {channel.name} is disabled")
            counts[NotificationStatus.FAILED] += 1
            continue
        if notification.tenant_id not in silences:
            silences[notification.tenant_id] = active_silences(notification.tenant_id, now)
        active = silences[notification.tenant_id]
        kept = [alert for alert in message.alerts if silenced_by(active, alert.labels) is None]
        if not kept:
            silence = silenced_by(active, message.alerts[0].labels) if message.alerts else None
            reason = f"silenced by silence {silence.pk} {silence.comment}".strip() if silence else "no alerts"
            _finish(notification, NotificationStatus.SILENCED, reason)
            counts[NotificationStatus.SILENCED] += 1
            continue
        window = in_mute_window(channel.mute_windows or [], now)
        if window is not None:
            zone = window.get("timezone") or "UTC"
            reason = f"inside mute window {window.get('start')}-{window.get('end')} {zone}"
            _finish(notification, NotificationStatus.MUTED, reason)
            counts[NotificationStatus.MUTED] += 1
            continue
        to_send.append((notification, replace(message, alerts=kept)))

    results = _send_all(to_send)
    finished = now + timedelta(seconds=time.monotonic() - started)
    for (notification, _message), result in zip(to_send, results, strict=True):
        status = _record(notification, result, finished)
        if status == NotificationStatus.PENDING:
            retried += 1
        else:
            counts[status] += 1
    return DeliveryReport(
        claimed=len(claimed),
        delivered=counts[NotificationStatus.DELIVERED],
        retried=retried,
        failed=counts[NotificationStatus.FAILED],
        silenced=counts[NotificationStatus.SILENCED],
        muted=counts[NotificationStatus.MUTED],
        reminders=reminders,
        seconds=round(time.monotonic() - started, 6),
    )


def _claim(now: datetime, limit: int) -> list[Notification]:
    earlier_undelivered = Notification.objects.filter(
        channel_id=OuterRef("channel_id"),
        group_key=OuterRef("group_key"),
        id__lt=OuterRef("id"),
        status__in=(NotificationStatus.PENDING, NotificationStatus.SENDING),
    )
    due = (
        Notification.objects.filter(
            Q(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=NotificationStatus.SENDING, lease_until__lt=now)
        )
        .filter(~Exists(earlier_undelivered))
        .order_by("next_attempt_at", "id")
    )
    claimed: list[Notification] = []
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        for notification in due[:limit]:
            calls = max(len(notification.payload.get("alerts", [])), 1)  # PagerDuty: one request per alert
            lease = now + timedelta(seconds=timeout_seconds() * calls + LEASE_MARGIN_SECONDS)
            won = Notification.objects.filter(
                pk=notification.pk, status=notification.status, lease_until=notification.lease_until
            ).update(status=NotificationStatus.SENDING, lease_until=lease)
            if won:
                notification.status = NotificationStatus.SENDING
                notification.lease_until = lease
                claimed.append(notification)
    if claimed:
        channels = Channel.objects.in_bulk({n.channel_id for n in claimed})
        for notification in claimed:
            notification.channel = channels[notification.channel_id]
    return claimed


def _send_all(batch: list[tuple[Notification, Message]]) -> list[SendResult]:
    if len(batch) <= 1:
        return [send_message(message, notification.channel) for notification, message in batch]
    with ThreadPoolExecutor(
        max_workers=min(MAX_PARALLEL_SENDS, len(batch)), thread_name_prefix="notify"
    ) as pool:
        return list(pool.map(lambda item: send_message(item[1], item[0].channel), batch))


def _finish(notification: Notification, status: str, reason: str) -> None:
    Notification.objects.filter(
        pk=notification.pk, status=NotificationStatus.SENDING, lease_until=notification.lease_until
    ).update(status=status, lease_until=None, last_error=reason)
    log.info(
        "alert notification not sent tenant=%s channel=%s notification=%s status=%s reason=%s",
        notification.tenant_id,
        notification.channel_id,
        notification.pk,
        status,
        reason,
    )


def _record(notification: Notification, result: SendResult, at: datetime) -> str:
    attempts = notification.attempts + 1
    DeliveryAttempt.objects.create(
        notification=notification,
        at=at,
        ok=result.ok,
        status_code=result.status_code,
        error=result.error,
        duration_ms=result.duration_ms,
    )
    fields: dict[str, Any] = {"attempts": attempts, "lease_until": None}
    if result.ok:
        status = NotificationStatus.DELIVERED
        fields.update(delivered_at=at, last_error="")
    elif result.permanent or attempts >= notification.channel.max_attempts:
        status = NotificationStatus.FAILED
        fields["last_error"] = result.error
    else:
        status = NotificationStatus.PENDING
        fields.update(
            last_error=result.error,
            next_attempt_at=at + timedelta(seconds=retry_delay(attempts, result.retry_after)),
        )
    fields["status"] = status
    Notification.objects.filter(
        pk=notification.pk, status=NotificationStatus.SENDING, lease_until=notification.lease_until
    ).update(**fields)
    log_at = log.info if result.ok else log.warning
    log_at(
        "alert notification attempt tenant=%s channel=%s kind=%s notification=%s attempt=%d status=%s "
        "code=%s ms=%.1f error=%r",
        notification.tenant_id,
        notification.channel_id,
        notification.channel.kind,
        notification.pk,
        attempts,
        status,
        result.status_code,
        result.duration_ms,
        result.error,
    )
    return status


def sample_message(channel: Channel, now: datetime | None = None) -> Message:
    """A one-alert message saying it is a test, for ``send_test``."""
    now = now or timezone.now()
    tenant = channel.tenant
    key = alert_dedup_key(str(tenant.pk), 0, f"test-{channel.pk}")
    alert = Alert(
        rule_id=0,
        rule="OllyStack test notification",
        series="",
        dedup_key=key,
        status="firing",
        severity="info",
        labels={"alertname": "OllyStack test notification", "severity": "info", "tenant": tenant.name},
        annotations={
            "summary": f"Test notification from OllyStack to channel {channel.name}: delivery works.",
            "value": "0",
        },
        value=0.0,
        threshold=None,
        starts_at=iso(now),
        ends_at=None,
        event_id=0,
        generator_url=public_url(f"/api/v1/alerts/channels/{channel.pk}?tenant={tenant.name}"),
    )
    return Message(
        version=PAYLOAD_VERSION,
        notification_id=None,
        tenant=tenant.name,
        tenant_id=str(tenant.pk),
        channel=channel.name,
        group_key=f"{channel.pk}:test",
        group_labels={},
        dedup_key=key,
        status="firing",
        alerts=[alert],
    )


def send_test(channel: Channel) -> SendResult:
    """Send a test notification to ``channel`` now, whatever its silences and mute windows.

    Nothing is stored; the result says whether the target accepted it (and why not).
    """
    result = send_message(sample_message(channel), channel)
    log.info(
        "alert channel test tenant=%s channel=%s kind=%s ok=%s code=%s error=%r",
        channel.tenant_id,
        channel.pk,
        channel.kind,
        result.ok,
        result.status_code,
        result.error,
    )
    return result
