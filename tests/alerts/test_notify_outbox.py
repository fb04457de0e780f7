"""The outbox: grouping, group wait, deduplication keys, repeat suppression, reminders, send_resolved."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.models import ChannelKind, Notification, NotificationStatus, RuleSource, Silence, State
from alerts.notify import outbox
from alerts.notify.message import Message
from tests.alerts.notify_factories import T0, make_channel, make_rule, make_tenant, transition

pytestmark = pytest.mark.django_db

URL = "http://hooks.example/alerts"


def test_one_notification_per_channel_and_group() -> None:
    tenant = make_tenant()
    by_region = make_channel(tenant, url=URL, group_by=["region"])
    everything = make_channel(tenant, url=URL)
    rule = make_rule(tenant, by_region, everything, source=RuleSource.PROMQL, expr="up == 0", service="")
    events = [
        transition(rule, State.FIRING, series="a", labels={"region": "eu", "instance": "a"}),
        transition(rule, State.FIRING, series="b", labels={"region": "eu", "instance": "b"}),
        transition(rule, State.FIRING, series="c", labels={"region": "us", "instance": "c"}),
        transition(rule, State.PENDING, series="d", labels={"region": "us", "instance": "d"}),  # not notified
    ]
    queued = outbox.enqueue(events, now=T0)

    regional = sorted(
        (Message.from_json(n.payload) for n in queued if n.channel_id == by_region.pk),
        key=lambda m: m.group_labels["region"],
    )
    assert [(m.group_labels, len(m.alerts)) for m in regional] == [
        ({"region": "eu"}, 2),
        ({"region": "us"}, 1),
    ]
    [together] = [n for n in queued if n.channel_id == everything.pk]
    assert together.events.count() == 3
    assert Message.from_json(together.payload).group_labels == {}
    assert all(n.status == NotificationStatus.PENDING and n.next_attempt_at == T0 for n in queued)


def test_dedup_key_is_per_alert_and_shared_by_trigger_and_resolve() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.PAGERDUTY, secret="k" * 32)
    rule = make_rule(tenant, channel)
    [fired] = outbox.enqueue([transition(rule, State.FIRING, series="s")], now=T0)
    [resolved] = outbox.enqueue(
        [transition(rule, State.RESOLVED, at=T0 + timedelta(minutes=3), series="s")], now=T0
    )
    assert fired.dedup_key == resolved.dedup_key == f"ollystack:{tenant.pk}:{rule.pk}:s"
    assert (fired.firing, resolved.firing) == (True, False)
    assert fired.group_key == resolved.group_key
    alert = Message.from_json(resolved.payload).alerts[0]
    assert alert.starts_at == "2026-03-02T12:00:00Z"  # when it started firing, not when it resolved
    assert alert.ends_at == "2026-03-02T12:03:00Z"
    other_series = outbox.enqueue([transition(rule, State.FIRING, series="t")], now=T0)[0]
    assert other_series.dedup_key != fired.dedup_key


def test_group_wait_lets_later_events_join_the_waiting_notification() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, url=URL, group_wait_seconds=30)
    rule = make_rule(tenant, channel)
    [first] = outbox.enqueue([transition(rule, State.FIRING, series="a")], now=T0)
    assert first.next_attempt_at == T0 + timedelta(seconds=30)
    [joined] = outbox.enqueue(
        [transition(rule, State.FIRING, at=T0 + timedelta(seconds=5), series="b")],
        now=T0 + timedelta(seconds=5),
    )
    assert joined.pk == first.pk
    assert joined.events.count() == 2
    assert len(Message.from_json(Notification.objects.get(pk=first.pk).payload).alerts) == 2
    assert Notification.objects.get(pk=first.pk).next_attempt_at == T0 + timedelta(
        seconds=30
    )  # not pushed back

    # Once the first attempt was made, later events start a new notification.
    Notification.objects.filter(pk=first.pk).update(status=NotificationStatus.DELIVERED, attempts=1)
    [later] = outbox.enqueue(
        [transition(rule, State.FIRING, at=T0 + timedelta(seconds=40), series="c")],
        now=T0 + timedelta(seconds=40),
    )
    assert later.pk != first.pk


def test_resolved_does_not_join_a_waiting_firing_notification() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, url=URL, group_wait_seconds=30)
    rule = make_rule(tenant, channel)
    [fired] = outbox.enqueue([transition(rule, State.FIRING, series="a")], now=T0)
    [resolved] = outbox.enqueue(
        [transition(rule, State.RESOLVED, at=T0 + timedelta(seconds=2), series="a")], now=T0
    )
    assert resolved.pk != fired.pk
    assert resolved.firing is False


def test_firing_again_within_repeat_interval_is_suppressed_until_resolved() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, url=URL, repeat_interval_seconds=3600)
    rule = make_rule(tenant, channel)
    [first] = outbox.enqueue([transition(rule, State.FIRING, series="s")], now=T0)
    Notification.objects.filter(pk=first.pk).update(status=NotificationStatus.DELIVERED, attempts=1)

    later = T0 + timedelta(minutes=10)
    [duplicate] = outbox.enqueue([transition(rule, State.FIRING, at=later, series="s")], now=later)
    assert duplicate.status == NotificationStatus.SUPPRESSED
    assert "repeat interval" in duplicate.last_error

    # After a resolve the alert is new again, even within the interval.
    outbox.enqueue([transition(rule, State.RESOLVED, at=later + timedelta(minutes=1), series="s")], now=later)
    again = later + timedelta(minutes=2)
    [refired] = outbox.enqueue([transition(rule, State.FIRING, at=again, series="s")], now=again)
    assert refired.status == NotificationStatus.PENDING


def test_firing_after_repeat_interval_is_sent_again() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, url=URL, repeat_interval_seconds=60)
    rule = make_rule(tenant, channel)
    [first] = outbox.enqueue([transition(rule, State.FIRING, series="s")], now=T0)
    Notification.objects.filter(pk=first.pk).update(status=NotificationStatus.DELIVERED, attempts=1)
    later = T0 + timedelta(seconds=61)
    [second] = outbox.enqueue([transition(rule, State.FIRING, at=later, series="s")], now=later)
    assert second.status == NotificationStatus.PENDING


def test_failed_notification_does_not_suppress_the_next_firing() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, url=URL)
    rule = make_rule(tenant, channel)
    [first] = outbox.enqueue([transition(rule, State.FIRING, series="s")], now=T0)
    Notification.objects.filter(pk=first.pk).update(status=NotificationStatus.FAILED, attempts=6)
    later = T0 + timedelta(seconds=5)
    [second] = outbox.enqueue([transition(rule, State.FIRING, at=later, series="s")], now=later)
    assert second.status == NotificationStatus.PENDING


def test_reminders_resend_alerts_still_firing_after_the_repeat_interval() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, url=URL, repeat_interval_seconds=600)
    rule = make_rule(tenant, channel)
    [first] = outbox.enqueue([transition(rule, State.FIRING, series="s")], now=T0)
    Notification.objects.filter(pk=first.pk).update(status=NotificationStatus.DELIVERED, attempts=1)

    assert outbox.enqueue_reminders(T0 + timedelta(seconds=599)) == []
    [reminder] = outbox.enqueue_reminders(T0 + timedelta(seconds=600))
    assert reminder.firing
    assert reminder.dedup_key == first.dedup_key
    assert outbox.enqueue_reminders(T0 + timedelta(seconds=601)) == []  # the reminder counts as notified

    Notification.objects.filter(pk=reminder.pk).update(status=NotificationStatus.DELIVERED, attempts=1)
    transition(rule, State.RESOLVED, at=T0 + timedelta(seconds=700), series="s")  # no longer firing
    assert outbox.enqueue_reminders(T0 + timedelta(seconds=5000)) == []


def test_send_resolved_off_and_disabled_channels_get_nothing() -> None:
    tenant = make_tenant()
    quiet = make_channel(tenant, url=URL, send_resolved=False)
    disabled = make_channel(tenant, url=URL, enabled=False)
    rule = make_rule(tenant, quiet, disabled)
    fired = outbox.enqueue([transition(rule, State.FIRING)], now=T0)
    assert [n.channel_id for n in fired] == [quiet.pk]
    assert outbox.enqueue([transition(rule, State.RESOLVED, at=T0 + timedelta(seconds=9))], now=T0) == []


def test_payload_carries_labels_values_and_summary() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, url=URL)
    rule = make_rule(
        tenant, channel, labels={"team": "payments"}, description="Payments fail.", operation="POST /pay"
    )
    [notification] = outbox.enqueue([transition(rule, State.FIRING, value=0.125)], now=T0)
    message = Message.from_json(notification.payload)
    assert (message.tenant, message.tenant_id, message.status) == (tenant.name, str(tenant.pk), "firing")
    [alert] = message.alerts
    assert alert.labels == {
        "alertname": "checkout errors",
        "severity": "critical",
        "tenant": tenant.name,
        "service": "checkout",
        "operation": "POST /pay",
        "team": "payments",
    }
    assert alert.annotations == {
        "summary": "checkout errors: checkout POST /pay error rate is 0.125 over the last 60 s "
        "(alert when > 0.05)",
        "value": "0.125",
        "description": "Payments fail.",
    }
    assert (alert.value, alert.threshold, alert.details) == (0.125, 0.05, {"requests": 40, "errors": 10})


def test_muted_alert_still_firing_is_notified_when_the_window_ends() -> None:
    tenant = make_tenant()
    # T0 is Monday 12:00 UTC.
    window = {"start": "11:00", "end": "12:30", "timezone": "UTC"}
    channel = make_channel(tenant, url=URL, mute_windows=[window])
    rule = make_rule(tenant, channel)
    [muted] = outbox.enqueue([transition(rule, State.FIRING, series="s")], now=T0)
    Notification.objects.filter(pk=muted.pk).update(status=NotificationStatus.MUTED)
    assert outbox.enqueue_reminders(T0 + timedelta(minutes=29)) == []  # still inside the window
    [after] = outbox.enqueue_reminders(T0 + timedelta(minutes=30))
    assert after.firing
    assert after.status == NotificationStatus.PENDING
    assert after.dedup_key == muted.dedup_key


def test_silenced_alert_still_firing_is_notified_when_the_silence_ends() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, url=URL)
    rule = make_rule(tenant, channel)
    Silence.objects.create(
        tenant=tenant,
        matchers=[{"name": "region", "value": "eu", "is_regex": False, "is_equal": True}],
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1),
    )
    [silenced] = outbox.enqueue([transition(rule, State.FIRING, series="s", labels={"region": "eu"})], now=T0)
    Notification.objects.filter(pk=silenced.pk).update(status=NotificationStatus.SILENCED)
    assert outbox.enqueue_reminders(T0 + timedelta(minutes=59)) == []
    [after] = outbox.enqueue_reminders(T0 + timedelta(hours=1))
    assert Message.from_json(after.payload).alerts[0].labels["region"] == "eu"


def test_alerts_in_delivery_or_never_notified_get_no_reminder() -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, url=URL, repeat_interval_seconds=60)
    rule = make_rule(tenant, channel)
    outbox.enqueue([transition(rule, State.FIRING, series="s")], now=T0)  # still pending
    assert outbox.enqueue_reminders(T0 + timedelta(hours=1)) == []
    added_later = make_channel(tenant, url=URL, repeat_interval_seconds=60)
    rule.channels.add(added_later)
    Notification.objects.filter(rule=rule).update(status=NotificationStatus.DELIVERED, attempts=1)
    reminders = outbox.enqueue_reminders(T0 + timedelta(hours=1))
    assert [n.channel_id for n in reminders] == [channel.pk]
