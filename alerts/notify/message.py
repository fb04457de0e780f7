"""The provider-neutral form of a notification: what the outbox stores and every notifier reads.

A notification carries the alerts of one group (a channel, a rule and the values of the channel's
``group_by`` labels). It is stored as JSON in ``Notification.payload`` when it is queued, so the delivery
log shows exactly what was sent, and each notifier turns it into its provider's format.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

from alerts.models import AlertEvent, Rule, RuleKind, RuleSource, State

PAYLOAD_VERSION = "1"
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class Alert:
    rule_id: int
    rule: str
    series: str
    dedup_key: str  # stable per alert (tenant, rule, series): a trigger and its resolve share it
    status: str  # "firing" | "resolved"
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    threshold: float | None
    starts_at: str  # ISO 8601, UTC
    ends_at: str | None  # the resolve time; None while firing
    event_id: int
    generator_url: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    version: str
    notification_id: int | None
    tenant: str
    tenant_id: str
    channel: str
    group_key: str
    group_labels: dict[str, str]
    dedup_key: str
    status: str  # "firing" | "resolved"
    alerts: list[Alert]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], notification_id: int | None = None) -> Message:
        alerts = [Alert(**alert) for alert in data.get("alerts", [])]
        fields = {key: value for key, value in data.items() if key != "alerts"}
        if notification_id is not None:
            fields["notification_id"] = notification_id
        return cls(alerts=alerts, **fields)

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    @property
    def title(self) -> str:
        """One line for subjects and headers: "[FIRING:2] checkout errors"."""
        names = sorted({alert.rule for alert in self.alerts})
        return f"[{self.status.upper()}:{len(self.alerts)}] {', '.join(names)}"


def alert_dedup_key(tenant_id: str, rule_id: int, series: str) -> str:
    return f"ollystack:{tenant_id}:{rule_id}:{series or '-'}"


def group_labels(labels: dict[str, str], group_by: list[str]) -> dict[str, str]:
    return {name: labels.get(name, "") for name in sorted(group_by)}


def group_key(channel_id: int, rule_id: int, grouping: dict[str, str]) -> str:
    if not grouping:
        return f"{channel_id}:{rule_id}"
    digest = hashlib.sha256(json.dumps(grouping, sort_keys=True).encode()).hexdigest()[:24]
    return f"{channel_id}:{rule_id}:{digest}"


def label_name(name: str) -> str:
    """A label name Prometheus and Alertmanager accept ([a-zA-Z_][a-zA-Z0-9_]*)."""
    cleaned = _LABEL_NAME.sub("_", name) or "_"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def alert_labels(rule: Rule, tenant_name: str, event_labels: dict[str, Any]) -> dict[str, str]:
    """The labels silences match and providers show.

    alertname (the rule), severity, tenant (its name), service/operation for RED rules, the rule's labels
    and the series' labels.
    """
    labels: dict[str, str] = {}
    if rule.source == RuleSource.RED:
        labels["service"] = rule.service
        if rule.operation:
            labels["operation"] = rule.operation
    labels.update({str(k): str(v) for k, v in (rule.labels or {}).items()})
    labels.update({str(k): str(v) for k, v in (event_labels or {}).items()})
    labels["alertname"] = rule.name
    labels["severity"] = rule.severity
    labels["tenant"] = tenant_name
    return labels


def format_value(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no data"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def describe(rule: Rule, value: float | None, threshold: float | None, firing: bool) -> str:
    """A sentence about why the alert fires (or that it resolved), for summaries and subjects."""
    window = f"over the last {rule.window_seconds} s"
    subject = _subject(rule)
    if rule.kind == RuleKind.ABSENCE:
        text = f"no {subject} seen for {rule.window_seconds} s"
    elif rule.kind == RuleKind.ANOMALY:
        text = f"{subject} is anomalous {window} (z-score {format_value(value)}, limit {rule.anomaly_z:g})"
    else:
        limit = format_value(threshold if threshold is not None else rule.threshold)
        text = f"{subject} is {format_value(value)} {window} (alert when {rule.comparator} {limit})"
    return text if firing else f"resolved: {text}"


def _subject(rule: Rule) -> str:
    if rule.source == RuleSource.RED:
        where = rule.service + (f" {rule.operation}" if rule.operation else "")
        figure = {"error_rate": "error rate", "request_rate": "request rate (/s)"}.get(
            rule.red_figure, f"p{round(rule.quantile * 100)} latency (ms)"
        )
        return f"{where} {figure}" if rule.kind != RuleKind.ABSENCE else f"requests for {where}"
    if rule.source == RuleSource.LOGS:
        words = f' matching "{rule.log_query}"' if rule.log_query else ""
        return f"log records{words}"
    return f"`{rule.expr.strip()}`" if rule.kind != RuleKind.ABSENCE else f"series for `{rule.expr.strip()}`"


def public_url(path: str) -> str:
    """An absolute link into OllyStack (OLLYSTACK_PUBLIC_URL + path)."""
    return str(settings.OLLYSTACK_PUBLIC_URL).rstrip("/") + path


def generator_url(rule: Rule, tenant_name: str) -> str:
    return public_url(f"/api/v1/alerts/rules/{rule.pk}?tenant={tenant_name}")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def build_alert(event: AlertEvent, rule: Rule, tenant_name: str, starts_at: datetime) -> Alert:
    firing = event.to_state == State.FIRING
    labels = alert_labels(rule, tenant_name, event.labels)
    summary = f"{rule.name}: {describe(rule, event.value, event.threshold, firing)}"
    annotations = {"summary": summary[:1024], "value": format_value(event.value)}
    if rule.description:
        annotations["description"] = rule.description
    return Alert(
        rule_id=rule.pk,
        rule=rule.name,
        series=event.series,
        dedup_key=alert_dedup_key(str(rule.tenant_id), rule.pk, event.series),
        status="firing" if firing else "resolved",
        severity=rule.severity,
        labels=labels,
        annotations=annotations,
        value=None if event.value is None or math.isnan(event.value) else event.value,
        threshold=event.threshold,
        starts_at=iso(starts_at),
        ends_at=None if firing else iso(event.at),
        event_id=event.pk,
        generator_url=generator_url(rule, tenant_name),
        details=dict(event.details or {}),
    )
