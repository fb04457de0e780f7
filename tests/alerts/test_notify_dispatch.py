"""The dispatcher: delivery, retries with backoff, permanent failures, leases, ordering, silences, mutes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import override_settings

from alerts.models import Channel, DeliveryAttempt, Notification, NotificationStatus, Rule, Silence, State
from alerts.notify import outbox
from alerts.notify.dispatch import _claim, deliver_due, retry_delay
from alerts.notify.silences import in_mute_window, matcher_matches, silence_matches
from tests.alerts.notify_factories import T0, make_channel, make_rule, make_tenant, transition
from tests.alerts.recorder import Recorder, Reply, refused_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def target() -> Iterator[Recorder]:
    with Recorder() as recorder:
        yield recorder


@pytest.fixture(autouse=True)
def _fast_retries() -> Iterator[None]:
    with override_settings(OLLYSTACK_ALERT_RETRY_BASE_SECONDS=2, OLLYSTACK_ALERT_RETRY_MAX_SECONDS=300):
        yield


def _setup(url: str, **channel_fields: Any) -> tuple[Channel, Rule]:
    tenant = make_tenant()
    channel = make_channel(tenant, url=url, **channel_fields)
    return channel, make_rule(tenant, channel)


def _fire(
    rule: Rule, at: datetime = T0, series: str = "", labels: dict[str, str] | None = None
) -> Notification:
    [notification] = outbox.enqueue(
        [transition(rule, State.FIRING, at=at, series=series, labels=labels)], now=at
    )
    return notification


def _attempts(notification: Notification) -> list[tuple[bool, int | None]]:
    return [(a.ok, a.status_code) for a in DeliveryAttempt.objects.filter(notification=notification)]


def test_delivers_and_records_the_attempt(target: Recorder) -> None:
    _channel, rule = _setup(target.url + "/hook")
    notification = _fire(rule)
    report = deliver_due(T0)
    assert (report.claimed, report.delivered) == (1, 1)
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.DELIVERED
    assert notification.attempts == 1
    assert notification.delivered_at is not None
    assert _attempts(notification) == [(True, 200)]
    [request] = target.requests
    assert request.path == "/hook"
    assert request.json["status"] == "firing"
    assert deliver_due(T0 + timedelta(hours=1)).claimed == 0  # not sent twice


def test_not_due_before_next_attempt_at(target: Recorder) -> None:
    _channel, rule = _setup(target.url, group_wait_seconds=10)
    _fire(rule)
    assert deliver_due(T0 + timedelta(seconds=9)).claimed == 0
    assert deliver_due(T0 + timedelta(seconds=10)).delivered == 1


def test_server_errors_are_retried_with_exponential_backoff(target: Recorder) -> None:
    target.script(500, 503, 200)
    _channel, rule = _setup(target.url)
    notification = _fire(rule)

    assert deliver_due(T0).retried == 1
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.PENDING
    assert "answered HTTP 500" in notification.last_error
    first_delay = (notification.next_attempt_at - T0).total_seconds()
    assert 2 <= first_delay <= 2.2 + 1  # base · 2^0 plus ≤ 10 % jitter (plus the time the attempt took)

    retry_at = notification.next_attempt_at
    assert deliver_due(retry_at - timedelta(milliseconds=1)).claimed == 0
    assert deliver_due(retry_at).retried == 1
    notification.refresh_from_db()
    second_delay = (notification.next_attempt_at - retry_at).total_seconds()
    assert 4 <= second_delay <= 4.4 + 1  # base · 2^1

    assert deliver_due(notification.next_attempt_at).delivered == 1
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.DELIVERED
    assert notification.last_error == ""
    assert _attempts(notification) == [(False, 500), (False, 503), (True, 200)]
    assert len(target.requests) == 3
    # Every retry carries the same delivery id, so the receiver can drop duplicates.
    assert len({r.headers["x-ollystack-delivery"] for r in target.requests}) == 1


def test_retry_delay_is_capped() -> None:
    with override_settings(OLLYSTACK_ALERT_RETRY_BASE_SECONDS=2, OLLYSTACK_ALERT_RETRY_MAX_SECONDS=300):
        assert 2 <= retry_delay(1) <= 2.2
        assert 64 <= retry_delay(6) <= 70.4
        assert 300 <= retry_delay(20) <= 330
        assert retry_delay(3, retry_after=7) == 7
        assert retry_delay(3, retry_after=10_000) == 300


def test_down_target_is_retried_then_failed_with_last_error() -> None:
    _channel, rule = _setup(refused_url("/hook"), max_attempts=3)
    notification = _fire(rule)
    at = T0
    for _ in range(3):
        deliver_due(at)
        notification.refresh_from_db()
        at = notification.next_attempt_at
    assert notification.status == NotificationStatus.FAILED
    assert notification.attempts == 3
    assert notification.last_error.startswith("cannot reach http://127.0.0.1:")
    assert _attempts(notification) == [(False, None)] * 3
    assert deliver_due(at + timedelta(days=1)).claimed == 0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_client_errors_fail_at_once(target: Recorder, status: int) -> None:
    target.script(Reply(status, "no such hook"))
    _channel, rule = _setup(target.url)
    notification = _fire(rule)
    assert deliver_due(T0).failed == 1
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.FAILED
    assert notification.last_error.endswith(f"answered HTTP {status}: no such hook")
    assert notification.attempts == 1


@pytest.mark.parametrize("status", [408, 429])
def test_timeouts_and_throttling_are_retried(target: Recorder, status: int) -> None:
    target.script(status)
    _channel, rule = _setup(target.url)
    notification = _fire(rule)
    assert deliver_due(T0).retried == 1
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.PENDING


def test_429_honours_retry_after(target: Recorder) -> None:
    target.script(Reply(429, "slow down", {"Retry-After": "42"}))
    _channel, rule = _setup(target.url)
    notification = _fire(rule)
    deliver_due(T0)
    notification.refresh_from_db()
    assert 42 <= (notification.next_attempt_at - T0).total_seconds() < 43


def test_an_expired_lease_is_claimed_again(target: Recorder) -> None:
    _channel, rule = _setup(target.url)
    notification = _fire(rule)
    [claimed] = _claim(T0, 10)  # a dispatcher claims it, then dies before sending
    assert claimed.pk == notification.pk
    assert _claim(T0, 10) == []  # another one does not get it while the lease runs
    lease_until = Notification.objects.get(pk=notification.pk).lease_until
    assert lease_until is not None
    assert deliver_due(lease_until - timedelta(seconds=1)).claimed == 0
    assert deliver_due(lease_until + timedelta(seconds=1)).delivered == 1
    assert len(target.requests) == 1


def test_resolve_waits_for_its_trigger_still_being_retried(target: Recorder) -> None:
    target.script(500)
    _channel, rule = _setup(target.url)
    fired = _fire(rule, series="s")
    deliver_due(T0)  # the trigger fails once
    [resolved] = outbox.enqueue([transition(rule, State.RESOLVED, at=T0, series="s")], now=T0)
    assert deliver_due(T0 + timedelta(seconds=1)).claimed == 0  # the resolve may not overtake it
    fired.refresh_from_db()
    deliver_due(fired.next_attempt_at)
    deliver_due(fired.next_attempt_at)
    resolved.refresh_from_db()
    assert resolved.status == NotificationStatus.DELIVERED
    assert [r.json["status"] for r in target.requests] == ["firing", "firing", "resolved"]


def test_silenced_alerts_are_recorded_not_sent(target: Recorder) -> None:
    _channel, rule = _setup(target.url)
    Silence.objects.create(
        tenant_id=rule.tenant_id,
        matchers=[{"name": "service", "value": "check.*", "is_regex": True, "is_equal": True}],
        starts_at=T0 - timedelta(minutes=1),
        ends_at=T0 + timedelta(hours=1),
        comment="deploy",
    )
    notification = _fire(rule)
    assert deliver_due(T0).silenced == 1
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.SILENCED
    assert "deploy" in notification.last_error
    assert target.requests == []
    # An expired silence no longer applies.
    later = T0 + timedelta(hours=2)
    _fire(rule, at=later, series="other")
    assert deliver_due(later).delivered == 1


def test_a_silence_of_another_tenant_does_not_apply(target: Recorder) -> None:
    _channel, rule = _setup(target.url)
    other = make_tenant()
    Silence.objects.create(
        tenant=other,
        matchers=[{"name": "alertname", "value": rule.name, "is_regex": False, "is_equal": True}],
        starts_at=T0 - timedelta(minutes=1),
        ends_at=T0 + timedelta(hours=1),
    )
    _fire(rule)
    assert deliver_due(T0).delivered == 1


def test_only_silenced_alerts_of_a_group_are_left_out(target: Recorder) -> None:
    _channel, rule = _setup(target.url)
    Silence.objects.create(
        tenant_id=rule.tenant_id,
        matchers=[{"name": "region", "value": "eu", "is_regex": False, "is_equal": True}],
        starts_at=T0 - timedelta(minutes=1),
        ends_at=T0 + timedelta(hours=1),
    )
    outbox.enqueue(
        [
            transition(rule, State.FIRING, series="a", labels={"region": "eu"}),
            transition(rule, State.FIRING, series="b", labels={"region": "us"}),
        ],
        now=T0,
    )
    assert deliver_due(T0).delivered == 1
    [request] = target.requests
    assert [a["labels"]["region"] for a in request.json["alerts"]] == ["us"]


def test_inside_a_mute_window_notifications_are_muted(target: Recorder) -> None:
    # T0 is Monday 12:00 UTC = 13:00 in Paris.
    window = {"weekdays": [0], "start": "12:30", "end": "14:00", "timezone": "Europe/Paris"}
    _channel, rule = _setup(target.url, mute_windows=[window])
    notification = _fire(rule)
    assert deliver_due(T0).muted == 1
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.MUTED
    assert "mute window 12:30-14:00 Europe/Paris" in notification.last_error
    assert target.requests == []


def test_mute_windows_follow_weekday_and_time_zone() -> None:
    monday_noon_utc = T0
    paris = {"weekdays": [0], "start": "12:30", "end": "14:00", "timezone": "Europe/Paris"}
    assert in_mute_window([paris], monday_noon_utc) == paris
    assert in_mute_window([{**paris, "timezone": "UTC"}], monday_noon_utc) is None  # 12:00 UTC < 12:30
    assert in_mute_window([{**paris, "weekdays": [1]}], monday_noon_utc) is None  # Tuesdays only
    night = {"weekdays": [6], "start": "22:00", "end": "06:00", "timezone": "UTC"}  # Sunday night
    assert in_mute_window([night], T0.replace(hour=5, minute=59)) == night  # Monday 05:59 still inside
    assert in_mute_window([night], T0.replace(hour=6)) is None
    assert in_mute_window([night], T0.replace(hour=23)) is None  # Monday night is not Sunday night
    every_evening = {"start": "18:00", "end": "24:00"}
    assert in_mute_window([every_evening], T0.replace(hour=23, minute=59)) == every_evening
    assert in_mute_window([every_evening], T0) is None


def test_matchers_follow_alertmanager_semantics() -> None:
    labels = {"service": "checkout", "region": "eu-west"}
    assert matcher_matches({"name": "service", "value": "checkout"}, labels)
    assert not matcher_matches({"name": "service", "value": "check"}, labels)
    assert matcher_matches({"name": "region", "value": "eu-.*", "is_regex": True}, labels)
    assert not matcher_matches({"name": "region", "value": "eu", "is_regex": True}, labels)  # anchored
    assert matcher_matches({"name": "service", "value": "cart", "is_equal": False}, labels)
    assert not matcher_matches(
        {"name": "region", "value": "eu.*", "is_regex": True, "is_equal": False}, labels
    )
    assert matcher_matches({"name": "team", "value": ""}, labels)  # a missing label is ""
    assert not silence_matches([], labels)
    both = [{"name": "service", "value": "checkout"}, {"name": "region", "value": "us"}]
    assert not silence_matches(both, labels)


def test_a_disabled_channel_fails_its_queued_notifications(target: Recorder) -> None:
    channel, rule = _setup(target.url)
    notification = _fire(rule)
    Channel.objects.filter(pk=channel.pk).update(enabled=False)
    assert deliver_due(T0).failed == 1
    notification.refresh_from_db()
    assert notification.status == NotificationStatus.FAILED
    assert "disabled" in notification.last_error
    assert target.requests == []


def test_many_notifications_are_sent_in_one_call(target: Recorder) -> None:
    _channel, rule = _setup(target.url, group_by=["instance"])
    events = [transition(rule, State.FIRING, series=str(i), labels={"instance": str(i)}) for i in range(12)]
    outbox.enqueue(events, now=T0)
    report = deliver_due(T0, limit=10)
    assert (report.claimed, report.delivered) == (10, 10)
    assert deliver_due(T0).delivered == 2
    assert len(target.requests) == 12
