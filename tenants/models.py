"""Tenants, who belongs to them, and the keys that act on their behalf.

Keys are stored as the SHA-256 of the full key plus a short display prefix; the raw key exists only in
the response that created it. State changes go through ``tenants.logic``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

TENANT_NAME_RE = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
tenant_name_validator = RegexValidator(
    TENANT_NAME_RE,
    "use 1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit "
    "(for example acme or team-42)",
)


def validate_sample_rate(value: float) -> None:
    if not 0 < value <= 1:
        raise ValidationError(
            f"{value} is not a sample rate; use a fraction above 0 and at most 1 (1 keeps every trace, "
            "0.1 keeps one trace in ten)"
        )


RETENTION_DEFAULTS = {"traces": 30, "logs": 30, "metrics": 90}
MAX_RETENTION_DAYS = 3650
RETENTION_VALIDATORS = [MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)]


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=63, unique=True, validators=[tenant_name_validator])
    display_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    is_active = models.BooleanField(default=True)

    # Quotas, enforced by the ingest path per request (ingest.quotas). Empty means unlimited.
    rate_limit_records_per_second = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Sustained records per second (spans, log records, metric points) across all ingest "
        "servers. Empty: no rate limit. Over it, senders get HTTP 429 / RESOURCE_EXHAUSTED with a retry "
        "delay.",
    )
    rate_limit_burst = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Records that may arrive at once after a quiet period (the token bucket's size). "
        "Empty: twice the rate limit.",
    )
    daily_records_cap = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Records accepted per UTC day. Empty: unlimited. Once reached, requests are refused "
        "until 00:00 UTC.",
    )
    daily_bytes_cap = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Uncompressed OTLP bytes accepted per UTC day. Empty: unlimited.",
    )
    # Sampling, applied by ClickHouse while it inserts (the ingest pipeline reads the principal's policy).
    trace_sample_rate = models.FloatField(
        default=1.0,
        validators=[validate_sample_rate],
        help_text="Fraction of traces kept, decided per trace id so a trace is kept or dropped whole "
        "(1 keeps all). Traces with errors and slow spans are always kept.",
    )
    trace_slow_threshold_ms = models.PositiveIntegerField(
        default=1000,
        help_text="Spans at least this slow (milliseconds) are always kept, whatever the sample rate.",
    )
    # Retention per signal: written on every stored row, ClickHouse deletes rows older than it (TTL).
    retention_days_traces = models.PositiveSmallIntegerField(
        default=RETENTION_DEFAULTS["traces"],
        validators=RETENTION_VALIDATORS,
        help_text="Days spans are kept. Applies to data ingested from now on; stored rows keep the "
        "retention they were written with.",
    )
    retention_days_logs = models.PositiveSmallIntegerField(
        default=RETENTION_DEFAULTS["logs"],
        validators=RETENTION_VALIDATORS,
        help_text="Days log records are kept (for data ingested from now on).",
    )
    retention_days_metrics = models.PositiveSmallIntegerField(
        default=RETENTION_DEFAULTS["metrics"],
        validators=RETENTION_VALIDATORS,
        help_text="Days metric points are kept (for data ingested from now on).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.rate_limit_burst is not None and self.rate_limit_records_per_second is None:
            raise ValidationError(
                {"rate_limit_burst": "a burst needs a rate limit; set one, or leave the burst empty"}
            )


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")
        ]
        ordering = ["tenant__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class KeyBase(models.Model):
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})" if self.name else f"{self.prefix}…"


class IngestKey(KeyBase):
    """Sends OTLP data for a tenant (HTTP header or gRPC metadata ``Authorization: Bearer olly_ing_…``)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="ingest_keys")

    class Meta(KeyBase.Meta):
        verbose_name = "ingest key"


class ApiScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    ADMIN = "admin", "Admin"


class ApiKey(KeyBase):
    """Reads (and, with wider scopes, changes) a tenant's data over the REST API."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta(KeyBase.Meta):
        verbose_name = "API key"
