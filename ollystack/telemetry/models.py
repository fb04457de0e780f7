"""Saved dashboards: a tenant's named grid of panels, each a PromQL or SQL query shown as a chart, a number
or a table.

Changes go through ``ollystack.telemetry.dashboards`` (validation, optimistic concurrency on ``version``,
live notifications after commit); the telemetry itself stays in ClickHouse.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenants.models import Tenant


class PanelType(models.TextChoices):
    TIMESERIES = "timeseries", "Time series"
    STAT = "stat", "Stat (one number)"
    TABLE = "table", "Table"


class QueryLanguage(models.TextChoices):
    PROMQL = "promql", "PromQL"
    SQL = "sql", "SQL"


class Dashboard(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="dashboards")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # [{"id", "title", "type", "language", "query", "unit", "width"}], in display order; see the logic module.
    panels = models.JSONField(default=list, blank=True)
    # Raised by every save; a save based on an older version is refused (someone else saved in between).
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tenant__name", "name"]
        indexes = [models.Index(fields=["tenant", "name"], name="dashboard_tenant_name")]

    def __str__(self) -> str:
        return self.name
