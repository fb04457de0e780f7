"""Who may call the API and for which tenant: one permission class for sessions, JWTs and API keys.

Every API view declares ``required_permission`` (a ``tenants.logic.Permission``, or a mapping from HTTP
method to one); ``TenantPermission`` resolves the caller's tenant, checks the declaration against the
role table in ``tenants.logic`` and keeps the result on the request for ``tenant_id_for``. A view that
declares nothing is refused (fail closed). Read endpoints (REST, GraphQL, SQL, PromQL) derive from
``ReadView``. The permission class itself lives in ``tenants.permissions`` (DRF imports its default
permission class while ``rest_framework.views`` loads, so that module must not import views).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from ollystack.telemetry.api.params import ErrorBody
from tenants.logic import Permission
from tenants.permissions import TenantPermission, required_permission, tenant_access

__all__ = [
    "ERRORS",
    "Permission",
    "ReadView",
    "TenantPermission",
    "parse",
    "required_permission",
    "tenant_access",
    "tenant_id_for",
]

ERRORS: dict[int, OpenApiResponse] = {
    400: OpenApiResponse(
        ErrorBody,
        description="A parameter is malformed (the message names it), or a user who belongs to several "
        "tenants did not choose one with ?tenant=<name>.",
    ),
    401: OpenApiResponse(ErrorBody, description="Missing, unknown, revoked or expired API key or JWT."),
    403: OpenApiResponse(
        ErrorBody,
        description="The role (or the key's scopes) does not allow this, or no access to the tenant.",
    ),
}


def tenant_id_for(request: Request) -> str:
    """The tenant of the credentials; a ``tenant`` parameter only chooses among a user's memberships."""
    return tenant_access(request).tenant_id


def parse(
    serializer_class: type[serializers.Serializer], request: Request, extra: tuple[str, ...] = ()
) -> Any:
    """Validated query parameters; empty values count as absent, unknown names are refused."""
    allowed = set(serializer_class().fields) | {"tenant", "format", *extra}
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise exceptions.ValidationError(
            {unknown[0]: f"unknown parameter; this endpoint accepts {', '.join(sorted(allowed))}"}
        )
    data = {key: value for key, value in request.query_params.items() if value != ""}
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ReadView(APIView):
    """Base of the read endpoints: any member (viewer and up) or a key with the read scope."""

    permission_classes = [TenantPermission]
    required_permission: Permission | Mapping[str, Permission] = Permission.READ
