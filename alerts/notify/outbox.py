"""Queue notifications for alert transitions, in the transaction that records them.

``enqueue`` runs inside the evaluation's transaction: the events and the notifications they cause are
committed together or not at all, and the dispatcher (``alerts.notify.dispatch``) delivers them later.

- One notification per channel and group: a group is the channel, the rule and the values of the
  channel's ``group_by`` labels. Events of one group queued in one call travel together; with a
  ``group_wait``, later events of the group join the notification while it waits for its first attempt.
- Firing and resolved alerts travel in separate notifications, delivered in order per group.
- A firing alert already notified on a channel within its ``repeat_interval`` (and not resolved since)
  is recorded as SUPPRESSED, not sent again. ``enqueue_reminders`` re-sends alerts still firing once their
  last notification is older than the interval (Alertmanager keeps them active that long).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from alerts.models import (
    AlertEvent,
    AlertState,
    Channel,
    Notification,
    NotificationStatus,
    Rule,
    Silence,
    State,
)
from alerts.notify.message import (
    PAYLOAD_VERSION,
    Alert,
    Message,
    alert_dedup_key,
    alert_labels,
    build_alert,
    group_key,
    group_labels,
)
from alerts.notify.silences import active_silences, in_mute_window, silenced_by

log = logging.getLogger(__name__)

# A notification in one of these states counts as "the alert was notified" for repeat suppression.
NOTIFIED = (NotificationStatus.PENDING, NotificationStatus.SENDING, NotificationStatus.DELIVERED)


def enqueue(events: Sequence[AlertEvent], now: datetime | None = None) -> list[Notification]:
    """Queue the notifications for these events (FIRING and RESOLVED ones; others are ignored)."""
    now = now or timezone.now()
    wanted = [e for e in events if e.to_state in (State.FIRING, State.RESOLVED)]
    if not wanted:
        return []
    rules = (
        Rule.objects.select_related("tenant")
        .prefetch_related("channels")
        .in_bulk({event.rule_id for event in wanted})
    )
    # (channel, group key, firing) → the events, in order
    groups: dict[tuple[int, str, bool], list[AlertEvent]] = {}
    channels: dict[int, Channel] = {}
    suppressed: list[Notification] = []
    with transaction.atomic():
        for event in sorted(wanted, key=lambda e: (e.at, e.pk)):
            rule = rules.get(event.rule_id)
            if rule is None:
                continue
            firing = event.to_state == State.FIRING
            for channel in rule.channels.all():
                if not channel.enabled or (not firing and not channel.send_resolved):
                    continue
                if firing and _recently_notified(channel, event, now):
                    suppressed.append(_suppressed(channel, rule, event, now))
                    continue
                channels[channel.pk] = channel
                grouping = group_labels(_labels_of(rule, event), list(channel.group_by or []))
                key = (channel.pk, group_key(channel.pk, rule.pk, grouping), firing)
                groups.setdefault(key, []).append(event)
        queued = [
            _queue_group(channels[channel_id], rules[group[0].rule_id], key, firing, group, now)
            for (channel_id, key, firing), group in groups.items()
        ]
    for notification in suppressed:
        log.info(
            "alert notification suppressed tenant=%s channel=%s rule=%s reason=repeat_interval",
            notification.tenant_id,
            notification.channel_id,
            notification.rule_id,
        )
    return queued + suppressed


def enqueue_reminders(now: datetime | None = None) -> list[Notification]:
    """Notify again the alerts still firing that a channel has not heard about lately.

    That is: its last notification there was delivered (or failed) longer than the repeat interval ago,
    or it was muted and the mute window is over, or silenced and no silence matches any more. Alerts being
    delivered, and alerts never notified on the channel (it was added later), are left alone.
    """
    now = now or timezone.now()
    states = list(
        AlertState.objects.filter(state=State.FIRING, rule__enabled=True)
        .select_related("rule", "rule__tenant")
        .prefetch_related("rule__channels")
    )
    if not states:
        return []
    through = Notification.events.through
    latest = (
        through.objects.filter(alertevent__rule_id__in={state.rule_id for state in states})
        .exclude(notification__status=NotificationStatus.SUPPRESSED)
        .values("notification__channel_id", "alertevent__rule_id", "alertevent__series")
        .annotate(last=Max("notification_id"))
    )
    last_ids = {
        (row["notification__channel_id"], row["alertevent__rule_id"], row["alertevent__series"]): row["last"]
        for row in latest
    }
    notifications = Notification.objects.in_bulk(set(last_ids.values()))
    silences: dict[Any, list[Silence]] = {}
    queued: list[Notification] = []
    with transaction.atomic():
        for state in states:
            for channel in state.rule.channels.all():
                last = notifications.get(last_ids.get((channel.pk, state.rule_id, state.series), -1))
                if (
                    not channel.enabled
                    or last is None
                    or not last.firing
                    or not _due_again(channel, state, last, now, silences)
                ):
                    continue
                event = (
                    AlertEvent.objects.filter(
                        rule_id=state.rule_id, series=state.series, to_state=State.FIRING
                    )
                    .order_by("-at", "-id")
                    .first()
                )
                if event is None:
                    continue
                grouping = group_labels(_labels_of(state.rule, event), list(channel.group_by or []))
                key = group_key(channel.pk, state.rule_id, grouping)
                queued.append(_queue_group(channel, state.rule, key, True, [event], now))
    return queued


def _due_again(
    channel: Channel, state: AlertState, last: Notification, now: datetime, silences: dict[Any, list[Silence]]
) -> bool:
    if last.status in (NotificationStatus.PENDING, NotificationStatus.SENDING):
        return False
    if last.status == NotificationStatus.MUTED:
        return in_mute_window(channel.mute_windows or [], now) is None
    if last.status == NotificationStatus.SILENCED:
        if state.tenant_id not in silences:
            silences[state.tenant_id] = active_silences(state.tenant_id, now)
        labels = alert_labels(state.rule, state.rule.tenant.name, state.labels)
        return silenced_by(silences[state.tenant_id], labels) is None
    return now - last.created_at >= timedelta(seconds=channel.repeat_interval_seconds)


def _labels_of(rule: Rule, event: AlertEvent) -> dict[str, str]:
    return alert_labels(rule, rule.tenant.name, event.labels)


def _recently_notified(channel: Channel, event: AlertEvent, now: datetime) -> bool:
    """True when this alert's firing was notified here within the repeat interval and not resolved since."""
    last = (
        Notification.objects.filter(
            channel=channel, events__rule_id=event.rule_id, events__series=event.series, status__in=NOTIFIED
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if last is None or not last.firing:
        return False
    if now - last.created_at >= timedelta(seconds=channel.repeat_interval_seconds):
        return False
    notified_at = last.events.filter(rule_id=event.rule_id, series=event.series).aggregate(at=Max("at"))["at"]
    resolved_since = AlertEvent.objects.filter(
        rule_id=event.rule_id, series=event.series, to_state=State.RESOLVED, at__gt=notified_at
    ).exclude(pk=event.pk)
    return not resolved_since.exists()


def _suppressed(channel: Channel, rule: Rule, event: AlertEvent, now: datetime) -> Notification:
    grouping = group_labels(_labels_of(rule, event), list(channel.group_by or []))
    key = group_key(channel.pk, rule.pk, grouping)
    message = _message(channel, rule, key, grouping, True, _alerts(rule, [event]))
    notification = Notification.objects.create(
        tenant_id=rule.tenant_id,
        channel=channel,
        rule=rule,
        group_key=key,
        dedup_key=message.dedup_key,
        firing=True,
        payload=message.to_json(),
        status=NotificationStatus.SUPPRESSED,
        last_error=f"already notified within the repeat interval ({channel.repeat_interval_seconds} s)",
        created_at=now,
        next_attempt_at=now,
    )
    notification.events.add(event)
    return notification


def _queue_group(
    channel: Channel, rule: Rule, key: str, firing: bool, events: list[AlertEvent], now: datetime
) -> Notification:
    """Join the group's notification still waiting for its first attempt, or create one."""
    latest = (
        Notification.objects.select_for_update()
        .filter(channel=channel, group_key=key)
        .order_by("-id")
        .first()
    )
    grouping = group_labels(_labels_of(rule, events[0]), list(channel.group_by or []))
    if (
        latest is not None
        and latest.status == NotificationStatus.PENDING
        and latest.attempts == 0
        and latest.firing == firing
    ):
        previous = Message.from_json(latest.payload).alerts
        merged = {alert.dedup_key: alert for alert in previous}
        merged.update({alert.dedup_key: alert for alert in _alerts(rule, events)})
        message = _message(channel, rule, key, grouping, firing, list(merged.values()))
        latest.payload = message.to_json()
        latest.dedup_key = message.dedup_key
        latest.save(update_fields=["payload", "dedup_key"])
        latest.events.add(*events)
        return latest
    message = _message(channel, rule, key, grouping, firing, _alerts(rule, events))
    notification = Notification.objects.create(
        tenant_id=rule.tenant_id,
        channel=channel,
        rule=rule,
        group_key=key,
        dedup_key=message.dedup_key,
        firing=firing,
        payload=message.to_json(),
        status=NotificationStatus.PENDING,
        created_at=now,
        next_attempt_at=now + timedelta(seconds=channel.group_wait_seconds),
    )
    notification.events.add(*events)
    return notification


def _alerts(rule: Rule, events: Iterable[AlertEvent]) -> list[Alert]:
    alerts: dict[str, Alert] = {}
    for event in events:
        starts_at = event.at if event.to_state == State.FIRING else _firing_start(event)
        alert = build_alert(event, rule, rule.tenant.name, starts_at)
        alerts[alert.dedup_key] = alert  # a later event of the same alert wins
    return list(alerts.values())


def _firing_start(event: AlertEvent) -> datetime:
    """When the alert that this event resolves started firing."""
    started = (
        AlertEvent.objects.filter(
            rule_id=event.rule_id, series=event.series, to_state=State.FIRING, at__lte=event.at
        )
        .order_by("-at", "-id")
        .values_list("at", flat=True)
        .first()
    )
    return started or event.at


def _message(
    channel: Channel, rule: Rule, key: str, grouping: dict[str, str], firing: bool, alerts: list[Alert]
) -> Message:
    alerts = sorted(alerts, key=lambda alert: alert.dedup_key)
    tenant_id = str(rule.tenant_id)
    if len(alerts) == 1:
        dedup = alerts[0].dedup_key
    else:
        dedup = alert_dedup_key(tenant_id, rule.pk, "group:" + key.rsplit(":", 1)[-1])
    return Message(
        version=PAYLOAD_VERSION,
        notification_id=None,
        tenant=rule.tenant.name,
        tenant_id=tenant_id,
        channel=channel.name,
        group_key=key,
        group_labels=grouping,
        dedup_key=dedup,
        status="firing" if firing else "resolved",
        alerts=alerts,
    )
