"""Alert rules, their state, the events of every transition, and the notifications those events send.

State changes go through ``alerts.logic``: a rule's evaluation, its state transitions, the events they
record and the notifications they queue are written in one transaction, so a process that dies in the
middle leaves either all of it or none of it. Notifications are an outbox: the dispatcher delivers them
afterwards, with retries, and records every attempt.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from tenants.models import Tenant


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    ERROR = "error", "Error"
    WARNING = "warning", "Warning"
    INFO = "info", "Info"


class ChannelKind(models.TextChoices):
    ALERTMANAGER = "alertmanager", "Alertmanager (v2 API)"
    SLACK = "slack", "Slack incoming webhook"
    PAGERDUTY = "pagerduty", "PagerDuty (Events API v2)"
    WEBHOOK = "webhook", "Webhook (HMAC-signed JSON)"
    EMAIL = "email", "Email"


class Channel(models.Model):
    """Where a rule's notifications go, and how they are grouped, repeated and muted."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alert_channels")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    # Alertmanager base URL (…:9093), Slack webhook URL, webhook URL; PagerDuty: the Events API URL
    # (empty: https://events.pagerduty.com/v2/enqueue).
    url = models.URLField(max_length=1000, blank=True)
    # PagerDuty integration (routing) key; webhook HMAC-SHA256 secret. Never shown back in full.
    secret = models.CharField(max_length=500, blank=True)
    recipients = models.TextField(blank=True, help_text="Email addresses, one per line or comma-separated.")
    # Notifications for alerts with equal values of these labels travel together (plus the rule).
    group_by = models.JSONField(default=list, blank=True)
    group_wait_seconds = models.PositiveIntegerField(default=0)
    repeat_interval_seconds = models.PositiveIntegerField(default=4 * 3600)
    send_resolved = models.BooleanField(default=True)
    # Recurring quiet times: [{"weekdays": [0..6] (Monday 0), "start": "HH:MM", "end": "HH:MM",
    # "timezone": "Europe/Paris"}]; notifications due inside one are recorded as muted, not sent.
    mute_windows = models.JSONField(default=list, blank=True)
    max_attempts = models.PositiveSmallIntegerField(default=6, validators=[MinValueValidator(1)])
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="alert_channel_unique_name")]
        ordering = ["tenant__name", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class RuleKind(models.TextChoices):
    THRESHOLD = "threshold", "Threshold"
    ABSENCE = "absence", "Absence (no data)"
    ANOMALY = "anomaly", "Anomaly (z-score)"


class RuleSource(models.TextChoices):
    RED = "red", "Service RED figure"
    LOGS = "logs", "Log records matching a query"
    PROMQL = "promql", "PromQL expression"


class RedFigure(models.TextChoices):
    ERROR_RATE = "error_rate", "Error rate (errors / requests)"
    REQUEST_RATE = "request_rate", "Request rate (per second)"
    LATENCY = "latency", "Latency percentile (milliseconds)"


class Comparator(models.TextChoices):
    GT = ">", ">"
    GE = ">=", ">="
    LT = "<", "<"
    LE = "<=", "<="


class Rule(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=RuleKind.choices, default=RuleKind.THRESHOLD)
    source = models.CharField(max_length=16, choices=RuleSource.choices, default=RuleSource.RED)
    # source=red: the service (required) and operation (empty: every operation of the service)
    service = models.CharField(max_length=200, blank=True)
    operation = models.CharField(max_length=500, blank=True)
    red_figure = models.CharField(max_length=16, choices=RedFigure.choices, blank=True)
    quantile = models.FloatField(
        default=0.95, validators=[MinValueValidator(0.5), MaxValueValidator(0.99)], help_text="0.5 to 0.99"
    )
    # source=logs: whole words to find in the body (empty: every record), minimum severity number
    log_query = models.CharField(max_length=500, blank=True)
    log_min_severity = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(24)])
    # source=promql: an instant-vector expression; one alert per resulting series
    expr = models.TextField(blank=True)
    comparator = models.CharField(max_length=2, choices=Comparator.choices, default=Comparator.GT)
    threshold = models.FloatField(default=0)
    anomaly_z = models.FloatField(default=3.0, validators=[MinValueValidator(0.5)])
    window_seconds = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(86_400)]
    )
    for_seconds = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(86_400)])
    # Flapping protection: a firing alert resolves only after its condition has been false this long.
    keep_firing_seconds = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(86_400)])
    labels = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    channels = models.ManyToManyField(Channel, blank=True, related_name="rules")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="alert_rule_unique_name")]
        ordering = ["tenant__name", "name"]

    def __str__(self) -> str:
        return self.name


class State(models.TextChoices):
    INACTIVE = "inactive", "Inactive"
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class AlertState(models.Model):
    """The current state of one alert: a rule, or one series of a rule that yields several (PromQL)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="states")
    series = models.CharField(max_length=64, blank=True)  # fingerprint of the labels; '' for one series
    labels = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.INACTIVE)
    value = models.FloatField(null=True, blank=True)  # the last evaluated value
    pending_since = models.DateTimeField(null=True, blank=True)
    firing_since = models.DateTimeField(null=True, blank=True)
    last_true_at = models.DateTimeField(null=True, blank=True)  # condition last held (flapping protection)
    evaluated_at = models.DateTimeField(null=True, blank=True)  # observation time of the last evaluation
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "series"], name="alert_state_unique_series")]
        indexes = [models.Index(fields=["tenant", "state"])]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.series or '-'}: {self.state}"


class AlertEvent(models.Model):
    """One state transition, with the values that caused it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="events")
    series = models.CharField(max_length=64, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    from_state = models.CharField(max_length=16, choices=State.choices)
    to_state = models.CharField(max_length=16, choices=State.choices)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)  # e.g. requests/errors, z-score, expression
    at = models.DateTimeField(default=timezone.now)  # observation time

    class Meta:
        indexes = [models.Index(fields=["tenant", "-at"]), models.Index(fields=["rule", "-at"])]
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.series or '-'}: {self.from_state} → {self.to_state} at {self.at}"


class Silence(models.Model):
    """Alerts whose labels match every matcher are not notified between ``starts_at`` and ``ends_at``."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alert_silences")
    # [{"name": "service", "value": "checkout", "is_regex": false, "is_equal": true}] (Alertmanager's form)
    matchers = models.JSONField(default=list)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-ends_at"]

    def __str__(self) -> str:
        return f"silence {self.pk} until {self.ends_at}"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for delivery (first try or a retry at next_attempt_at)
    SENDING = "sending", "Sending"  # claimed by a dispatcher until lease_until
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"  # every attempt failed; see the attempts
    SILENCED = "silenced", "Silenced"
    MUTED = "muted", "Muted"  # inside a mute window of the channel
    SUPPRESSED = "suppressed", "Suppressed"  # a duplicate of one already sent (deduplication)


class Notification(models.Model):
    """One message to one channel about one or more events of one group (outbox + delivery log)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    rule = models.ForeignKey(Rule, null=True, on_delete=models.SET_NULL, related_name="notifications")
    events = models.ManyToManyField(AlertEvent, related_name="notifications")
    group_key = models.CharField(max_length=200)
    dedup_key = models.CharField(max_length=200)  # PagerDuty dedup_key, webhook idempotency key
    firing = models.BooleanField(default=True)  # False: a resolved notification
    payload = models.JSONField(default=dict, blank=True)  # the alerts as sent (labels, values, times)
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["tenant", "-created_at"]),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"notification {self.pk} to {self.channel_id}: {self.status}"


class DeliveryAttempt(models.Model):
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="delivery_attempts")
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"attempt {self.pk} ({'ok' if self.ok else 'failed'})"
