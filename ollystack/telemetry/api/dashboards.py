"""Dashboards: CRUD of saved dashboards and their panels under /api/v1/dashboards.

Members read them; editors and up create, replace and delete them. A replace names the version it was
based on and gets 409 when someone else saved in between. Panel data comes from the read endpoints the
page already uses (PromQL at /prometheus/api/v1/query_range and /query, SQL at POST /api/v1/sql).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ollystack.telemetry import dashboards as logic
from ollystack.telemetry.api.access import ERRORS, TenantPermission, parse, tenant_access, tenant_id_for
from ollystack.telemetry.api.params import ErrorBody, TenantParam
from ollystack.telemetry.models import PanelType, QueryLanguage
from tenants.logic import Permission


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class PanelSerializer(serializers.Serializer):
    id = serializers.CharField(
        required=False,
        help_text="Stable id of the panel (letters, digits, - and _, at most 32); assigned when omitted.",
    )
    title = serializers.CharField(required=False, allow_blank=True, max_length=logic.MAX_TITLE)
    type = serializers.ChoiceField(choices=PanelType.choices)
    language = serializers.ChoiceField(choices=QueryLanguage.choices)
    query = serializers.CharField(
        help_text="promql: an instant-vector or scalar expression (time series: evaluated over the range; "
        "stat and table: at its end). sql: a read-only SELECT over the tenant's tables (see docs/sql.md)."
    )
    unit = serializers.CharField(
        required=False, allow_blank=True, help_text="Shown after the values, e.g. ms, req/s, %."
    )
    width = serializers.IntegerField(
        required=False,
        default=logic.DEFAULT_WIDTH,
        help_text=f"Columns of a 12-column grid, {logic.MIN_WIDTH} to {logic.MAX_WIDTH}.",
    )


class DashboardSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=logic.MAX_NAME)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    panels = PanelSerializer(
        many=True, required=False, help_text=f"In display order; at most {logic.MAX_PANELS}."
    )
    version = serializers.IntegerField(
        required=False,
        help_text="Read: the stored version. Replace (PUT): the version your changes are based on; "
        "a newer stored version answers 409.",
    )
    created_by = serializers.CharField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class DashboardSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    panel_count = serializers.IntegerField()
    version = serializers.IntegerField()
    created_by = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField()


class DashboardListSerializer(serializers.Serializer):
    dashboards = DashboardSummarySerializer(many=True)


WRITABLE = ("name", "description", "panels", "version")


def _body(request: Request, require_version: bool) -> tuple[logic.DashboardSpec, int | None]:
    """The request's dashboard; panels are checked by the logic (messages name the panel)."""
    data = request.data
    if not isinstance(data, dict):
        raise exceptions.ValidationError('send a JSON object: {"name": ..., "panels": [...]}')
    unknown = sorted(set(data) - set(DashboardSerializer().fields))
    if unknown:
        raise exceptions.ValidationError({unknown[0]: f"unknown field; send {', '.join(WRITABLE)}"})
    name = data.get("name")
    if not isinstance(name, str):
        raise exceptions.ValidationError({"name": "a name (text) is required"})
    description = data.get("description", "")
    if description is not None and not isinstance(description, str):
        raise exceptions.ValidationError({"description": "must be text"})
    version = data.get("version")
    if require_version and (isinstance(version, bool) or not isinstance(version, int)):
        raise exceptions.ValidationError(
            {"version": "the version your changes are based on (a number, from GET) is required"}
        )
    with answers():
        panels = logic.panels_from_json(data.get("panels") or [])
    spec = logic.DashboardSpec(name=name, description=description or "", panels=panels)
    return spec, version if require_version else None


@contextmanager
def answers() -> Iterator[None]:
    """The logic's errors as HTTP answers that keep its message."""
    try:
        yield
    except logic.InvalidDashboard as exc:
        raise exceptions.ValidationError({exc.field: exc.message}) from None
    except logic.NotFound as exc:
        raise exceptions.NotFound(str(exc)) from None
    except logic.VersionConflict as exc:
        raise Conflict(str(exc)) from None
    except logic.DashboardError as exc:
        raise exceptions.ValidationError(str(exc)) from None


def dashboard_json(dashboard: logic.DashboardInfo) -> dict[str, Any]:
    return {
        "id": dashboard.id,
        "name": dashboard.name,
        "description": dashboard.description,
        "panels": [panel.as_json() for panel in dashboard.panels],
        "version": dashboard.version,
        "created_by": dashboard.created_by,
        "created_at": dashboard.created_at.isoformat(),
        "updated_at": dashboard.updated_at.isoformat(),
    }


def summary_json(dashboard: logic.DashboardInfo) -> dict[str, Any]:
    return {
        "id": dashboard.id,
        "name": dashboard.name,
        "description": dashboard.description,
        "panel_count": len(dashboard.panels),
        "version": dashboard.version,
        "created_by": dashboard.created_by,
        "updated_at": dashboard.updated_at.isoformat(),
    }


DASHBOARD_ID = OpenApiParameter(
    "dashboard_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The dashboard's id."
)
NOT_FOUND = OpenApiResponse(ErrorBody, description="No such dashboard in this tenant.")
CONFLICT = OpenApiResponse(
    ErrorBody, description="The dashboard was saved by someone else since the version you sent; reload it."
)


class DashboardsView(APIView):
    permission_classes = [TenantPermission]
    required_permission = {"GET": Permission.READ, "POST": Permission.WRITE}

    @extend_schema(
        operation_id="dashboards_list",
        summary="Dashboards of your tenant, by name",
        parameters=[TenantParam],
        responses={200: DashboardListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        parse(TenantParam, request)
        found = logic.list_dashboards(tenant_id_for(request))
        return Response({"dashboards": [summary_json(d) for d in found]})

    @extend_schema(
        operation_id="dashboards_create",
        summary="Create a dashboard (editor and up, or a key with the write scope)",
        parameters=[TenantParam],
        request=DashboardSerializer,
        responses={201: DashboardSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        parse(TenantParam, request)
        spec, _ = _body(request, require_version=False)
        access = tenant_access(request)
        with answers():
            created = logic.create_dashboard(access.tenant_id, spec, created_by=access.user_id)
        return Response(dashboard_json(created), status=status.HTTP_201_CREATED)


class DashboardView(APIView):
    permission_classes = [TenantPermission]
    required_permission = {"GET": Permission.READ, "PUT": Permission.WRITE, "DELETE": Permission.WRITE}

    @extend_schema(
        operation_id="dashboard_get",
        summary="One dashboard with its panels",
        parameters=[DASHBOARD_ID, TenantParam],
        responses={200: DashboardSerializer, 404: NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, dashboard_id: int) -> Response:
        parse(TenantParam, request)
        with answers():
            return Response(dashboard_json(logic.get_dashboard(tenant_id_for(request), dashboard_id)))

    @extend_schema(
        operation_id="dashboard_replace",
        summary="Replace a dashboard's name, description and panels",
        description="Send the version you read; if the stored one is newer the answer is 409 and nothing "
        "changes. Open pages of the dashboard are told over ws/dashboards/<id>/ once the save commits.",
        parameters=[DASHBOARD_ID, TenantParam],
        request=DashboardSerializer,
        responses={200: DashboardSerializer, 404: NOT_FOUND, 409: CONFLICT, **ERRORS},
    )
    def put(self, request: Request, dashboard_id: int) -> Response:
        parse(TenantParam, request)
        spec, version = _body(request, require_version=True)
        assert version is not None
        with answers():
            saved = logic.update_dashboard(tenant_id_for(request), dashboard_id, spec, version)
        return Response(dashboard_json(saved))

    @extend_schema(
        operation_id="dashboard_delete",
        summary="Delete a dashboard",
        parameters=[DASHBOARD_ID, TenantParam],
        responses={204: None, 404: NOT_FOUND, **ERRORS},
    )
    def delete(self, request: Request, dashboard_id: int) -> Response:
        parse(TenantParam, request)
        with answers():
            logic.delete_dashboard(tenant_id_for(request), dashboard_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns: list[URLPattern] = [
    path("dashboards", DashboardsView.as_view(), name="api-dashboards"),
    path("dashboards/<int:dashboard_id>", DashboardView.as_view(), name="api-dashboard"),
]
