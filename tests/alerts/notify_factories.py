"""Factories for the notification tests: a tenant, channels, rules and the events evaluation records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from alerts.models import AlertEvent, AlertState, Channel, ChannelKind, RedFigure, Rule, RuleSource, State
from tenants.models import Tenant

T0 = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)  # a Monday


def make_tenant() -> Tenant:
    return Tenant.objects.create(name=f"t{uuid.uuid4().hex[:12]}")


def make_channel(tenant: Tenant, kind: str = ChannelKind.WEBHOOK, url: str = "", **fields: Any) -> Channel:
    fields.setdefault("name", f"{kind}-{uuid.uuid4().hex[:6]}")
    return Channel.objects.create(tenant=tenant, kind=kind, url=url, **fields)


def make_rule(tenant: Tenant, *channels: Channel, **fields: Any) -> Rule:
    fields.setdefault("name", "checkout errors")
    fields.setdefault("source", RuleSource.RED)
    fields.setdefault("service", "checkout")
    fields.setdefault("red_figure", RedFigure.ERROR_RATE)
    fields.setdefault("threshold", 0.05)
    fields.setdefault("severity", "critical")
    rule = Rule.objects.create(tenant=tenant, **fields)
    rule.channels.set(channels)
    return rule


def transition(
    rule: Rule,
    to_state: str,
    at: datetime = T0,
    series: str = "",
    labels: dict[str, str] | None = None,
    value: float | None = 0.25,
) -> AlertEvent:
    """Record a transition as the evaluator does: the event and the alert's current state."""
    previous: dict[str, str] = {State.FIRING: State.PENDING, State.RESOLVED: State.FIRING}
    from_state = previous.get(to_state, State.INACTIVE)
    event = AlertEvent.objects.create(
        tenant_id=rule.tenant_id,
        rule=rule,
        series=series,
        labels=labels or {},
        from_state=from_state,
        to_state=to_state,
        value=value,
        threshold=rule.threshold,
        details={"requests": 40, "errors": 10},
        at=at,
    )
    AlertState.objects.update_or_create(
        rule=rule,
        series=series,
        defaults={
            "tenant_id": rule.tenant_id,
            "labels": labels or {},
            "state": to_state,
            "value": value,
            "evaluated_at": at,
            "firing_since": at if to_state == State.FIRING else None,
        },
    )
    return event
