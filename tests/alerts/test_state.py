"""The alert state machine: transitions, their events, the stale-observation guard, series that go away, and
the notifications queued in the same transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.models import (
    AlertEvent,
    AlertState,
    Channel,
    ChannelKind,
    Notification,
    RedFigure,
    Rule,
    RuleKind,
    RuleSource,
    State,
)
from alerts.state import Observation, apply_observations, next_state, series_key, threshold_of
from tenants.models import Tenant

T0 = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_rule(**fields: Any) -> Rule:
    tenant = Tenant.objects.create(name=f"t{uuid.uuid4().hex[:12]}")
    fields.setdefault("name", "checkout errors")
    fields.setdefault("source", RuleSource.RED)
    fields.setdefault("service", "checkout")
    fields.setdefault("red_figure", RedFigure.ERROR_RATE)
    fields.setdefault("threshold", 0.05)
    return Rule.objects.create(tenant=tenant, **fields)


def observe(
    rule: Rule, seconds: float, condition: bool, value: float | None = 0.5, series: str = ""
) -> list[str]:
    """Apply one observation; the transitions as 'from>to'."""
    labels = {"job": series} if series else {}
    obs = Observation(rule.id, series_key(labels), labels, value, condition, {"requests": 10})
    return [f"{e.from_state}>{e.to_state}" for e in apply_observations([rule], [obs], at(seconds))]


def state(rule: Rule, series: str = "") -> AlertState:
    return AlertState.objects.get(rule=rule, series=series_key({"job": series} if series else {}))


# --- the pure function ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "condition", "since", "for_s", "keep_s", "expected"),
    [
        (State.INACTIVE, False, None, 0, 0, State.INACTIVE),
        (State.INACTIVE, True, None, 0, 0, State.FIRING),
        (State.INACTIVE, True, None, 30, 0, State.PENDING),
        (State.RESOLVED, True, None, 30, 0, State.PENDING),
        (State.RESOLVED, True, None, 0, 0, State.FIRING),
        (State.RESOLVED, False, None, 0, 0, State.RESOLVED),
        (State.PENDING, True, 29, 30, 0, State.PENDING),
        (State.PENDING, True, 30, 30, 0, State.FIRING),
        (State.PENDING, False, 29, 30, 0, State.INACTIVE),
        (State.FIRING, True, None, 30, 0, State.FIRING),
        (State.FIRING, False, 0, 30, 0, State.RESOLVED),
        (State.FIRING, False, 9, 0, 10, State.FIRING),
        (State.FIRING, False, 10, 0, 10, State.RESOLVED),
    ],
)
def test_next_state(
    current: str, condition: bool, since: int | None, for_s: int, keep_s: int, expected: str
) -> None:
    """``since``: seconds pending (pending) or since the condition last held (firing)."""
    rule = Rule(for_seconds=for_s, keep_firing_seconds=keep_s)
    alert = AlertState(state=current)
    if since is not None:
        alert.pending_since = alert.last_true_at = at(0)
    assert next_state(rule, alert, condition, at(since or 0)) == expected


def test_series_keys_and_thresholds() -> None:
    assert series_key({}) == ""
    assert series_key({"a": "1", "b": "2"}) == series_key({"b": "2", "a": "1"})
    assert series_key({"a": "1"}) != series_key({"a": "2"})
    assert len(series_key({"a": "1"})) == 32
    assert threshold_of(Rule(kind=RuleKind.THRESHOLD, threshold=0.1)) == 0.1
    assert threshold_of(Rule(kind=RuleKind.ANOMALY, anomaly_z=4)) == 4
    assert threshold_of(Rule(kind=RuleKind.ABSENCE, window_seconds=300)) == 300


# --- persistence ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pending_firing_resolved_and_again() -> None:
    rule = make_rule(for_seconds=2)
    assert observe(rule, 0, False) == []
    assert state(rule).state == State.INACTIVE
    assert observe(rule, 1, True) == ["inactive>pending"]
    assert observe(rule, 2, True) == []
    assert observe(rule, 3, True, value=0.75) == ["pending>firing"]
    alert = state(rule)
    assert (alert.state, alert.firing_since, alert.value, alert.pending_since) == (
        State.FIRING,
        at(3),
        0.75,
        None,
    )
    assert observe(rule, 4, False) == ["firing>resolved"]
    assert observe(rule, 5, False) == []
    assert observe(rule, 6, True) == ["resolved>pending"]
    assert observe(rule, 7, False) == ["pending>inactive"]

    events = list(AlertEvent.objects.filter(rule=rule).order_by("at"))
    assert [e.to_state for e in events] == ["pending", "firing", "resolved", "pending", "inactive"]
    firing = events[1]
    assert (firing.value, firing.threshold, firing.details, firing.at) == (
        0.75,
        0.05,
        {"requests": 10},
        at(3),
    )
    assert firing.tenant_id == rule.tenant_id


@pytest.mark.django_db
def test_for_zero_fires_at_once_and_keep_firing_holds_it() -> None:
    rule = make_rule(keep_firing_seconds=10)
    assert observe(rule, 0, True) == ["inactive>firing"]
    assert observe(rule, 5, False) == []  # false for 5 s only
    assert observe(rule, 6, True) == []  # flapping back: still the same firing alert
    assert observe(rule, 15, False) == []
    assert observe(rule, 16, False) == ["firing>resolved"]


@pytest.mark.django_db
def test_an_observation_not_newer_than_the_last_is_dropped() -> None:
    rule = make_rule()
    assert observe(rule, 10, True) == ["inactive>firing"]
    assert observe(rule, 10, False) == []  # the same moment, applied by another evaluator
    assert observe(rule, 9, False) == []  # an older one
    assert state(rule).state == State.FIRING
    assert state(rule).evaluated_at == at(10)
    assert observe(rule, 11, False) == ["firing>resolved"]
    assert observe(rule, 11, True) == []


@pytest.mark.django_db
def test_a_series_that_is_gone_counts_as_false() -> None:
    rule = make_rule(source=RuleSource.PROMQL, expr="up == 0", service="", red_figure="")

    def series(*jobs: str) -> list[Observation]:
        return [Observation(rule.id, series_key({"job": j}), {"job": j}, 1, True) for j in jobs]

    events = apply_observations([rule], series("api", "db"), at(0))
    assert [(e.labels, e.to_state) for e in events] == [({"job": "api"}, "firing"), ({"job": "db"}, "firing")]
    # the next evaluation yields only "db": "api" resolves, with its labels kept
    events = apply_observations([rule], series("db"), at(1))
    assert [(e.labels, e.to_state, e.details) for e in events] == [
        ({"job": "api"}, State.RESOLVED, {"gone": True})
    ]
    # a rule left out of an evaluation (its query failed) keeps its alerts
    assert apply_observations([], [], at(2)) == []
    assert state(rule, "db").state == State.FIRING
    assert state(rule, "api").state == State.RESOLVED


@pytest.mark.django_db
def test_quiet_alerts_get_only_their_evaluation_time() -> None:
    rule = make_rule()
    observe(rule, 0, False, value=0.01)
    observe(rule, 1, False, value=0.02)
    alert = state(rule)
    assert (alert.evaluated_at, alert.value) == (at(1), 0.01)  # the value is kept current while active


@pytest.mark.django_db
def test_firing_and_resolved_events_queue_notifications_and_tell_the_runtime_on_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    rule = make_rule(for_seconds=1)
    channel = Channel.objects.create(
        tenant=rule.tenant, name="hooks", kind=ChannelKind.WEBHOOK, url="http://127.0.0.1:9/hook"
    )
    rule.channels.set([channel])
    with django_capture_on_commit_callbacks() as callbacks:
        assert observe(rule, 0, True) == ["inactive>pending"]
    assert len(callbacks) == 1
    assert not Notification.objects.filter(rule=rule).exists()  # pending notifies nobody

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert observe(rule, 1, True) == ["pending>firing"]
    assert len(callbacks) == 1
    [notification] = Notification.objects.filter(rule=rule)
    assert notification.firing
    assert [e.to_state for e in notification.events.all()] == [State.FIRING]

    with django_capture_on_commit_callbacks() as callbacks:
        assert observe(rule, 2, True) == []
    assert callbacks == []  # nothing changed, nothing to tell
