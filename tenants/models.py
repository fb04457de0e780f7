"""Tenants, who belongs to them, and the keys that act on their behalf.

Keys are stored as the SHA-256 of the full key plus a short display prefix; the raw key exists only in
the response that created it. State changes go through ``tenants.logic``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

TENANT_NAME_RE = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
tenant_name_validator = RegexValidator(
    TENANT_NAME_RE,
    "use 1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit "
    "(for example acme or team-42)",
)


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=63, unique=True, validators=[tenant_name_validator])
    display_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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
