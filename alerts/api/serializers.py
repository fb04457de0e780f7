"""The JSON shapes of the alert API: requests are checked here for types, then by ``alerts.logic`` for
meaning; answers are built from the models by the ``*_json`` functions."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from rest_framework import serializers

from alerts import logic
from alerts.models import (
    AlertEvent,
    AlertState,
    Channel,
    ChannelKind,
    Comparator,
    Notification,
    NotificationStatus,
    RedFigure,
    Rule,
    RuleKind,
    RuleSource,
    Severity,
    Silence,
    State,
)
from ollystack.telemetry.api.params import TenantParam, TimeField

# --- rules ------------------------------------------------------------------------------------------


class RuleSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=200, help_text="Unique in the tenant; the alertname label.")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(
        choices=RuleKind.choices,
        default=RuleKind.THRESHOLD,
        help_text="threshold: the value compared with threshold; absence: no data for window_seconds; "
        "anomaly: the value's z-score against the trailing hour exceeds anomaly_z.",
    )
    source = serializers.ChoiceField(choices=RuleSource.choices, default=RuleSource.RED)  # type: ignore[assignment]
    service = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        help_text="source red: the service (its service.name).",
    )
    operation = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=500,
        help_text="source red: one operation (span name); empty: the whole service.",
    )
    red_figure = serializers.ChoiceField(
        choices=RedFigure.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="source red (threshold, anomaly): the figure compared.",
    )
    quantile = serializers.FloatField(required=False, default=0.95, help_text="red_figure latency: 0.5-0.99.")
    log_query = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=500,
        help_text="source logs: whole words every counted record holds.",
    )
    log_min_severity = serializers.IntegerField(
        required=False,
        default=0,
        help_text="source logs: minimum OTel severity number (9 INFO, 13 WARN, 17 ERROR).",
    )
    expr = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="source promql: an instant-vector expression."
    )
    comparator = serializers.ChoiceField(choices=Comparator.choices, default=Comparator.GT)
    threshold = serializers.FloatField(default=0.0, help_text="Unused by absence rules.")
    anomaly_z = serializers.FloatField(default=3.0, help_text="anomaly rules: the z-score that fires.")
    window_seconds = serializers.IntegerField(default=60, help_text="The evaluated window: 1 to 86400.")
    for_seconds = serializers.IntegerField(
        default=0, help_text="Pending this long before firing (0: at once)."
    )
    keep_firing_seconds = serializers.IntegerField(
        default=0, help_text="A firing alert resolves only after its condition has been false this long."
    )
    labels = serializers.DictField(
        child=serializers.CharField(allow_blank=True), default=dict, help_text="Added to every alert."
    )
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.WARNING)
    channels = serializers.ListField(
        child=serializers.IntegerField(min_value=1), default=list, help_text="Ids of the channels to notify."
    )
    enabled = serializers.BooleanField(default=True)
    created_by = serializers.CharField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class RuleListSerializer(serializers.Serializer):
    rules = RuleSerializer(many=True)


class RuleListParams(TenantParam):
    enabled = serializers.BooleanField(required=False, allow_null=True, default=None)


def rule_changes(data: dict[str, Any]) -> dict[str, Any]:
    """Validated request data as ``RuleSpec`` fields."""
    changes = dict(data)
    if "channels" in changes:
        changes["channel_ids"] = tuple(changes.pop("channels"))
    if "labels" in changes:
        changes["labels"] = dict(changes["labels"])
    return changes


def rule_json(rule: Rule) -> dict[str, Any]:
    body = {name: getattr(rule, name) for name in logic.RULE_FIELDS}
    body.update(
        id=rule.pk,
        labels=dict(rule.labels or {}),
        channels=sorted(c.pk for c in rule.channels.all()),
        created_by=rule.created_by.get_username() if rule.created_by else None,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )
    return dict(RuleSerializer(body).data)


# --- channels ---------------------------------------------------------------------------------------


class MuteWindowSerializer(serializers.Serializer):
    weekdays = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        help_text="0 (Monday) to 6 (Sunday); default every day.",
    )
    start = serializers.CharField(help_text="HH:MM, local time of the window's time zone.")
    end = serializers.CharField(help_text="HH:MM; before start: the window runs past midnight.")
    timezone = serializers.CharField(required=False, help_text="IANA name, e.g. Europe/Paris; default UTC.")


class ChannelSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    url = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1000,
        help_text="alertmanager: base URL (http://host:9093); slack: the incoming webhook URL (shown "
        "masked); webhook: the URL to POST to; pagerduty: optional Events API URL. Omitted on update: "
        "unchanged.",
    )
    secret = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        max_length=500,
        help_text="pagerduty: the integration (routing) key, 32 characters; webhook: the HMAC-SHA256 "
        "signing secret. Never returned; omitted on update: unchanged.",
    )
    secret_set = serializers.BooleanField(read_only=True, help_text="Whether a secret is stored.")
    recipients = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, help_text="email: the addresses."
    )
    group_by = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text="Alerts with equal values of these labels (and the same rule) travel in one notification.",
    )
    group_wait_seconds = serializers.IntegerField(
        default=0, help_text="Wait this long for more alerts of a group before sending (0 to 3600)."
    )
    repeat_interval_seconds = serializers.IntegerField(
        default=4 * 3600, help_text="A still-firing alert is notified again after this long."
    )
    send_resolved = serializers.BooleanField(default=True)
    mute_windows = MuteWindowSerializer(
        many=True,
        required=False,
        default=list,
        help_text="Recurring quiet times; notifications are recorded.",
    )
    max_attempts = serializers.IntegerField(default=6, help_text="Delivery attempts before FAILED (1 to 50).")
    enabled = serializers.BooleanField(default=True)
    created_at = serializers.DateTimeField(read_only=True)


class ChannelListSerializer(serializers.Serializer):
    channels = ChannelSerializer(many=True)


def channel_changes(data: dict[str, Any]) -> dict[str, Any]:
    changes = dict(data)
    for name in ("recipients", "group_by"):
        if name in changes:
            changes[name] = tuple(changes[name])
    if "mute_windows" in changes:
        changes["mute_windows"] = tuple(dict(w) for w in changes["mute_windows"])
    return changes


def masked_url(channel: Channel) -> str:
    """A Slack webhook URL is a credential: only its scheme and host are shown."""
    if channel.kind != ChannelKind.SLACK or not channel.url:
        return channel.url
    parts = urlsplit(channel.url)
    return f"{parts.scheme}://{parts.netloc}/…"


def channel_json(channel: Channel) -> dict[str, Any]:
    spec = logic.channel_spec(channel)
    return dict(
        ChannelSerializer(
            {
                "id": channel.pk,
                "name": channel.name,
                "kind": channel.kind,
                "url": masked_url(channel),
                "secret_set": bool(channel.secret),
                "recipients": list(spec.recipients),
                "group_by": list(spec.group_by),
                "group_wait_seconds": channel.group_wait_seconds,
                "repeat_interval_seconds": channel.repeat_interval_seconds,
                "send_resolved": channel.send_resolved,
                "mute_windows": list(spec.mute_windows),
                "max_attempts": channel.max_attempts,
                "enabled": channel.enabled,
                "created_at": channel.created_at,
            }
        ).data
    )


class ChannelTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    duration_ms = serializers.FloatField()


# --- silences ---------------------------------------------------------------------------------------


class MatcherSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Label name, e.g. service.name, alertname, severity.")
    value = serializers.CharField(allow_blank=True)
    is_regex = serializers.BooleanField(
        default=False, help_text="Value is a regular expression (whole value)."
    )
    is_equal = serializers.BooleanField(default=True, help_text="False: the alert must NOT match.")


SILENCE_STATUSES = (("active", "Active"), ("pending", "Starts later"), ("expired", "Expired"))


class SilenceSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    matchers = MatcherSerializer(many=True, help_text="An alert is silenced when every matcher matches.")
    starts_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    ends_at = serializers.DateTimeField()
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(choices=SILENCE_STATUSES, read_only=True)
    created_by = serializers.CharField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)


class SilenceListSerializer(serializers.Serializer):
    silences = SilenceSerializer(many=True)


class SilenceListParams(TenantParam):
    status = serializers.ChoiceField(choices=SILENCE_STATUSES, required=False, help_text="Only these.")


def silence_spec(data: dict[str, Any]) -> logic.SilenceSpec:
    return logic.SilenceSpec(
        matchers=logic.matchers_from_json([dict(m) for m in data["matchers"]]),
        starts_at=data.get("starts_at"),
        ends_at=data["ends_at"],
        comment=data.get("comment", ""),
    )


def silence_json(silence: Silence) -> dict[str, Any]:
    return dict(
        SilenceSerializer(
            {
                "id": silence.pk,
                "matchers": list(silence.matchers),
                "starts_at": silence.starts_at,
                "ends_at": silence.ends_at,
                "comment": silence.comment,
                "status": logic.silence_status(silence),
                "created_by": silence.created_by.get_username() if silence.created_by else None,
                "created_at": silence.created_at,
            }
        ).data
    )


# --- states, events, notifications ------------------------------------------------------------------

ACTIVE_STATES = ((State.FIRING.value, State.FIRING.label), (State.PENDING.value, State.PENDING.label))


class StateParams(TenantParam):
    state = serializers.ChoiceField(
        choices=ACTIVE_STATES, required=False, help_text="Only firing or only pending; default both."
    )
    rule = serializers.IntegerField(required=False, min_value=1, help_text="Only this rule's alerts.")


class AlertStateSerializer(serializers.Serializer):
    rule_id = serializers.IntegerField()
    rule = serializers.CharField(help_text="The rule's name.")
    severity = serializers.ChoiceField(choices=Severity.choices)
    series = serializers.CharField(
        allow_blank=True, help_text="Fingerprint of the labels; empty for one series."
    )
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True))
    state = serializers.ChoiceField(choices=State.choices)
    value = serializers.FloatField(allow_null=True, help_text="The last evaluated value.")
    pending_since = serializers.DateTimeField(allow_null=True)
    firing_since = serializers.DateTimeField(allow_null=True)
    evaluated_at = serializers.DateTimeField(allow_null=True)
    changed_at = serializers.DateTimeField()


class AlertStateListSerializer(serializers.Serializer):
    alerts = AlertStateSerializer(many=True)


def state_json(state: AlertState) -> dict[str, Any]:
    return {
        "rule_id": state.rule_id,
        "rule": state.rule.name,
        "severity": state.rule.severity,
        "series": state.series,
        "labels": state.labels,
        "state": state.state,
        "value": state.value,
        "pending_since": state.pending_since,
        "firing_since": state.firing_since,
        "evaluated_at": state.evaluated_at,
        "changed_at": state.changed_at,
    }


class EventParams(TenantParam):
    rule = serializers.IntegerField(required=False, min_value=1, help_text="Only this rule's events.")
    since = TimeField(required=False, help_text="RFC 3339 or Unix seconds: events at or after it.")
    until = TimeField(required=False, help_text="RFC 3339 or Unix seconds: events before it.")
    to_state = serializers.ChoiceField(
        choices=State.choices, required=False, help_text="Only transitions into it."
    )
    limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=logic.MAX_LIST)


class AlertEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    rule_id = serializers.IntegerField()
    rule = serializers.CharField()
    series = serializers.CharField(allow_blank=True)
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True))
    from_state = serializers.ChoiceField(choices=State.choices)
    to_state = serializers.ChoiceField(choices=State.choices)
    value = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    details = serializers.DictField(help_text="What caused it, e.g. requests and errors, z-score.")
    at = serializers.DateTimeField(help_text="Observation time.")


class AlertEventListSerializer(serializers.Serializer):
    events = AlertEventSerializer(many=True)


def event_json(event: AlertEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "rule_id": event.rule_id,
        "rule": event.rule.name,
        "series": event.series,
        "labels": event.labels,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "value": event.value,
        "threshold": event.threshold,
        "details": event.details,
        "at": event.at,
    }


class NotificationParams(TenantParam):
    status = serializers.ChoiceField(
        choices=NotificationStatus.choices, required=False, help_text="Only these."
    )
    channel = serializers.IntegerField(required=False, min_value=1, help_text="Only this channel's.")
    rule = serializers.IntegerField(required=False, min_value=1, help_text="Only this rule's.")
    since = TimeField(required=False, help_text="RFC 3339 or Unix seconds: created at or after it.")
    limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=logic.MAX_LIST)


class DeliveryAttemptSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    ok = serializers.BooleanField()
    status_code = serializers.IntegerField(
        allow_null=True, help_text="HTTP status; null when none came back."
    )
    error = serializers.CharField(allow_blank=True)
    duration_ms = serializers.FloatField()


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    channel_id = serializers.IntegerField()
    channel = serializers.CharField()
    rule_id = serializers.IntegerField(allow_null=True)
    rule = serializers.CharField(allow_null=True)
    firing = serializers.BooleanField(help_text="False: a resolved notification.")
    status = serializers.ChoiceField(choices=NotificationStatus.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField()
    last_error = serializers.CharField(allow_blank=True)
    group_key = serializers.CharField()
    dedup_key = serializers.CharField()
    event_ids = serializers.ListField(child=serializers.IntegerField())
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    delivery_attempts = DeliveryAttemptSerializer(many=True)


class NotificationListSerializer(serializers.Serializer):
    notifications = NotificationSerializer(many=True)


def notification_json(note: Notification) -> dict[str, Any]:
    return {
        "id": note.pk,
        "channel_id": note.channel_id,
        "channel": note.channel.name,
        "rule_id": note.rule_id,
        "rule": note.rule.name if note.rule else None,
        "firing": note.firing,
        "status": note.status,
        "attempts": note.attempts,
        "next_attempt_at": note.next_attempt_at,
        "last_error": note.last_error,
        "group_key": note.group_key,
        "dedup_key": note.dedup_key,
        "event_ids": sorted(e.pk for e in note.events.all()),
        "created_at": note.created_at,
        "delivered_at": note.delivered_at,
        "delivery_attempts": [
            {
                "at": a.at,
                "ok": a.ok,
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in note.delivery_attempts.all()
        ],
    }
