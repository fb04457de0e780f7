"""Dashboards: the only module that changes them, and the panel data their live view pushes.

Entry points (the REST API, the admin) build a frozen ``DashboardSpec``; ``check_dashboard`` validates it
with errors that name the panel and field to fix. Saves carry the version they were based on: a save based
on an older one is refused with ``VersionConflict`` instead of silently undoing someone else's changes.
Once a save commits, the dashboard's open pages are told over the channel layer (group
``dashboard.<tenant id>.<id>``) so they reload the definition.

``panel_data`` computes what one panel shows with the functions the read API uses (PromQL range and
instant queries, the tenant's read-only SQL), so a pushed update and a page's own fetch agree.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ollystack.telemetry.models import Dashboard, PanelType, QueryLanguage

log = logging.getLogger(__name__)

MAX_PANELS = 30
MAX_NAME = 200
MAX_DESCRIPTION = 2_000
MAX_TITLE = 200
MAX_QUERY = 10_000
MAX_UNIT = 32
MAX_LIST = 500
MIN_WIDTH, MAX_WIDTH, DEFAULT_WIDTH = 3, 12, 6  # columns of a 12-column grid
MAX_POINTS = 240  # a time-series panel's range is split into at most this many steps
PANEL_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
PANEL_KEYS = frozenset({"id", "title", "type", "language", "query", "unit", "width"})
PROMQL_TIMEOUT_S = 30.0

CHANGED = "dashboard.changed"
DELETED = "dashboard.deleted"


# --- errors -----------------------------------------------------------------------------------------


class DashboardError(Exception):
    """A dashboard change that cannot be made; the message says what to fix."""


class InvalidDashboard(DashboardError):
    """A field is not acceptable; ``field`` names it (``panels`` for anything about the panels)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class NotFound(DashboardError):
    pass


class VersionConflict(DashboardError):
    """The save was based on an older version than the stored one."""

    def __init__(self, dashboard_id: int, current: int, based_on: int) -> None:
        super().__init__(
            f"dashboard {dashboard_id} was saved by someone else in the meantime (version {current}; your "
            f"changes are based on version {based_on}); reload it and apply your changes again"
        )
        self.current = current


# --- specs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelSpec:
    """One panel. ``id`` is stable across saves (live updates name it); empty: one is assigned."""

    title: str
    type: str
    language: str
    query: str
    id: str = ""
    unit: str = ""
    width: int = DEFAULT_WIDTH

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "type": self.type,
            "language": self.language,
            "query": self.query,
            "unit": self.unit,
            "width": self.width,
        }


@dataclass(frozen=True)
class DashboardSpec:
    name: str
    description: str = ""
    panels: tuple[PanelSpec, ...] = ()


@dataclass(frozen=True)
class DashboardInfo:
    id: int
    tenant_id: str
    name: str
    description: str
    panels: tuple[PanelSpec, ...]
    version: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PanelRange:
    """The window a panel shows: Unix seconds; ``step`` is the time-series resolution."""

    start: int
    end: int
    step: int = field(default=0)

    @classmethod
    def last(cls, seconds: int, now: float | None = None) -> PanelRange:
        end = int(time.time() if now is None else now)
        return cls.of(end - seconds, end)

    @classmethod
    def of(cls, start: int, end: int) -> PanelRange:
        return cls(start, end, step_seconds(start, end))


def step_seconds(start: int, end: int) -> int:
    """The resolution of a time series over [start, end] (the page computes the same)."""
    return max(1, math.ceil((end - start) / MAX_POINTS))


# --- validation -------------------------------------------------------------------------------------


def _text(value: Any, where: str, limit: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidDashboard(where, "must be text")
    value = value.strip()
    if required and not value:
        raise InvalidDashboard(where, "is required")
    if len(value) > limit:
        raise InvalidDashboard(where, f"at most {limit} characters")
    return value


def panels_from_json(items: Any) -> tuple[PanelSpec, ...]:
    """Panels from a JSON list (the API body, the admin's field); unknown keys are refused."""
    if not isinstance(items, list | tuple):
        raise InvalidDashboard("panels", "a list of panels, e.g. [] or [{...}]")
    panels = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            raise InvalidDashboard("panels", f"panel {n} must be an object")
        unknown = sorted(set(item) - PANEL_KEYS)
        if unknown:
            raise InvalidDashboard(
                "panels", f"panel {n}: unknown field {unknown[0]!r}; use {', '.join(sorted(PANEL_KEYS))}"
            )
        width = item.get("width", DEFAULT_WIDTH)
        if width is None:
            width = DEFAULT_WIDTH
        if isinstance(width, bool) or not isinstance(width, int):
            raise InvalidDashboard("panels", f"panel {n}: width must be a whole number of grid columns")
        values = {
            key: item[key] for key in ("id", "title", "type", "language", "query", "unit") if key in item
        }
        for key, value in values.items():
            if value is not None and not isinstance(value, str):
                raise InvalidDashboard("panels", f"panel {n}: {key} must be text")
        panels.append(
            PanelSpec(
                id=values.get("id") or "",
                title=values.get("title") or "",
                type=values.get("type") or "",
                language=values.get("language") or "",
                query=values.get("query") or "",
                unit=values.get("unit") or "",
                width=width,
            )
        )
    return tuple(panels)


def _check_promql(query: str) -> str:
    import promql_parser

    from ollystack.telemetry.promql.errors import PromQLError
    from ollystack.telemetry.promql.parse import parse_query

    try:
        node = parse_query(query)
    except PromQLError as exc:
        return exc.message.replace('invalid parameter "query": ', "")
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    if isinstance(node, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
        return (
            "the expression is a range vector; a panel needs an instant vector or a scalar, e.g. "
            f"rate({query})"
        )
    if isinstance(node, promql_parser.StringLiteral):
        return "the expression is a string; a panel needs an instant vector or a scalar"
    return ""


def check_panel(panel: PanelSpec, n: int = 1) -> PanelSpec:
    """The panel as it will be stored, or ``InvalidDashboard`` naming it (its number and title)."""
    label = f"panel {n}" + (f" ({panel.title.strip()[:40]})" if panel.title.strip() else "")

    def invalid(message: str) -> InvalidDashboard:
        return InvalidDashboard("panels", f"{label}: {message}")

    if panel.id and not PANEL_ID.match(panel.id):
        raise invalid("id: letters, digits, '-' and '_', at most 32")
    if panel.type not in PanelType.values:
        raise invalid(f"type {panel.type!r} is not one of {', '.join(PanelType.values)}")
    if panel.language not in QueryLanguage.values:
        raise invalid(f"language {panel.language!r} is not one of {', '.join(QueryLanguage.values)}")
    title = panel.title.strip()
    if len(title) > MAX_TITLE:
        raise invalid(f"title: at most {MAX_TITLE} characters")
    query = panel.query.strip()
    if not query:
        raise invalid("the query is empty; write a PromQL expression or a SQL SELECT")
    if len(query) > MAX_QUERY:
        raise invalid(f"the query is longer than {MAX_QUERY} characters")
    if panel.language == QueryLanguage.PROMQL:
        problem = _check_promql(query)
        if problem:
            raise invalid(f"PromQL: {problem}")
    unit = panel.unit.strip()
    if len(unit) > MAX_UNIT:
        raise invalid(f"unit: at most {MAX_UNIT} characters")
    if not MIN_WIDTH <= panel.width <= MAX_WIDTH:
        raise invalid(f"width {panel.width} is out of range; use {MIN_WIDTH} to {MAX_WIDTH} grid columns")
    return PanelSpec(
        id=panel.id or f"p{secrets.token_hex(4)}",
        title=title,
        type=panel.type,
        language=panel.language,
        query=query,
        unit=unit,
        width=panel.width,
    )


def check_dashboard(spec: DashboardSpec) -> DashboardSpec:
    """The spec as it will be stored (trimmed, panel ids assigned), or ``InvalidDashboard``."""
    name = _text(spec.name, "name", MAX_NAME, required=True)
    description = _text(spec.description, "description", MAX_DESCRIPTION)
    if len(spec.panels) > MAX_PANELS:
        raise InvalidDashboard(
            "panels", f"{len(spec.panels)} panels; a dashboard holds at most {MAX_PANELS}, split it in two"
        )
    panels = tuple(check_panel(panel, n) for n, panel in enumerate(spec.panels, start=1))
    seen: set[str] = set()
    for n, panel in enumerate(panels, start=1):
        if panel.id in seen:
            raise InvalidDashboard("panels", f"panel {n}: id {panel.id!r} is used by another panel")
        seen.add(panel.id)
    return DashboardSpec(name=name, description=description, panels=panels)


# --- reads and writes -------------------------------------------------------------------------------


def _tenant_uuid(tenant_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(tenant_id))
    except ValueError:
        raise NotFound(f"{tenant_id!r} is not a tenant id") from None


def _dashboards(tenant_id: str) -> QuerySet[Dashboard]:
    return Dashboard.objects.filter(tenant_id=_tenant_uuid(tenant_id)).select_related("created_by")


def info(dashboard: Dashboard) -> DashboardInfo:
    return DashboardInfo(
        id=dashboard.pk,
        tenant_id=str(dashboard.tenant_id),
        name=dashboard.name,
        description=dashboard.description,
        panels=panels_from_json(dashboard.panels or []),
        version=dashboard.version,
        created_by=dashboard.created_by.get_username() if dashboard.created_by else None,
        created_at=dashboard.created_at,
        updated_at=dashboard.updated_at,
    )


def get_dashboard(tenant_id: str, dashboard_id: int) -> DashboardInfo:
    found = _dashboards(tenant_id).filter(pk=dashboard_id).first()
    if found is None:
        raise NotFound(f"no dashboard {dashboard_id} in this tenant")
    return info(found)


def list_dashboards(tenant_id: str) -> list[DashboardInfo]:
    """The tenant's dashboards by name (at most ``MAX_LIST``)."""
    return [info(d) for d in _dashboards(tenant_id).order_by("name", "pk")[:MAX_LIST]]


def create_dashboard(tenant_id: str, spec: DashboardSpec, created_by: int | None = None) -> DashboardInfo:
    checked = check_dashboard(spec)
    dashboard = Dashboard.objects.create(
        tenant_id=_tenant_uuid(tenant_id),
        name=checked.name,
        description=checked.description,
        panels=[p.as_json() for p in checked.panels],
        created_by_id=created_by,
    )
    log.info(
        "dashboard created tenant=%s dashboard=%s panels=%d", tenant_id, dashboard.pk, len(checked.panels)
    )
    return get_dashboard(tenant_id, dashboard.pk)


def update_dashboard(tenant_id: str, dashboard_id: int, spec: DashboardSpec, version: int) -> DashboardInfo:
    """Replace the dashboard's name, description and panels if ``version`` is still the stored one."""
    checked = check_dashboard(spec)
    with transaction.atomic():
        dashboard = _dashboards(tenant_id).select_for_update(of=("self",)).filter(pk=dashboard_id).first()
        if dashboard is None:
            raise NotFound(f"no dashboard {dashboard_id} in this tenant")
        if dashboard.version != version:
            raise VersionConflict(dashboard_id, dashboard.version, version)
        dashboard.name = checked.name
        dashboard.description = checked.description
        dashboard.panels = [p.as_json() for p in checked.panels]
        dashboard.version += 1
        dashboard.updated_at = timezone.now()
        dashboard.save(update_fields=["name", "description", "panels", "version", "updated_at"])
        message = {"type": CHANGED, "dashboard": dashboard_id, "version": dashboard.version}
        transaction.on_commit(lambda: publish(tenant_id, dashboard_id, message))
    log.info(
        "dashboard updated tenant=%s dashboard=%s version=%s", tenant_id, dashboard_id, dashboard.version
    )
    return info(dashboard)


def delete_dashboard(tenant_id: str, dashboard_id: int) -> None:
    with transaction.atomic():
        deleted, _ = Dashboard.objects.filter(tenant_id=_tenant_uuid(tenant_id), pk=dashboard_id).delete()
        if not deleted:
            raise NotFound(f"no dashboard {dashboard_id} in this tenant")
        message = {"type": DELETED, "dashboard": dashboard_id}
        transaction.on_commit(lambda: publish(tenant_id, dashboard_id, message))
    log.info("dashboard deleted tenant=%s dashboard=%s", tenant_id, dashboard_id)


# --- live updates -----------------------------------------------------------------------------------


def group_name(tenant_id: str, dashboard_id: int) -> str:
    """The channel-layer group of one dashboard's open pages."""
    return f"dashboard.{tenant_id}.{dashboard_id}"


_tasks: set[asyncio.Task[None]] = set()


def publish(tenant_id: str, dashboard_id: int, message: dict[str, Any]) -> None:
    """Tell the dashboard's open pages; never fails its caller (the save is committed already)."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        group = group_name(tenant_id, dashboard_id)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            # In a sync view under ASGI this runs on the server's loop (where an in-memory layer lives).
            async_to_sync(layer.group_send)(group, message)
            return
        task = loop.create_task(layer.group_send(group, message))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
    except Exception as exc:
        log.warning(
            "dashboard change not published tenant=%s dashboard=%s error=%s", tenant_id, dashboard_id, exc
        )


# --- panel data -------------------------------------------------------------------------------------


def panel_data(tenant_id: str, panel: PanelSpec, window: PanelRange) -> dict[str, Any]:
    """What ``panel`` shows over ``window``: ``{"panel", "start", "end", "step", "result"}`` with the answer
    of the endpoint the page would call (Prometheus ``data`` for PromQL, the SQL API's body for SQL), or
    ``{"panel", "error"}`` with the message that endpoint would give."""
    from ollystack.clickhouse import get_backend, user_sql
    from ollystack.telemetry.promql import query as promql
    from ollystack.telemetry.promql.errors import PromQLError

    base: dict[str, Any] = {"panel": panel.id, "start": window.start, "end": window.end, "step": window.step}
    try:
        if panel.language == QueryLanguage.SQL:
            result = user_sql.run_user_sql(get_backend(), tenant_id, panel.query, user_sql.Limits())
            base["result"] = {
                "columns": [{"name": c.name, "type": c.type} for c in result.columns],
                "rows": result.rows,
                "truncated": result.truncated,
            }
        elif panel.type == PanelType.TIMESERIES:
            base["result"] = promql.range_query(
                tenant_id,
                panel.query,
                window.start * 1000,
                window.end * 1000,
                window.step * 1000,
                PROMQL_TIMEOUT_S,
            )
        else:
            base["result"] = promql.instant_query(tenant_id, panel.query, window.end * 1000, PROMQL_TIMEOUT_S)
    except user_sql.SqlError as exc:
        return {"panel": panel.id, "error": exc.message}
    except PromQLError as exc:
        return {"panel": panel.id, "error": exc.message}
    return base


def dashboard_panels(tenant_id: str, dashboard_id: int) -> tuple[int, Sequence[PanelSpec]]:
    """The stored version and panels (the live view re-reads them on every round)."""
    found = get_dashboard(tenant_id, dashboard_id)
    return found.version, found.panels
