"""Who may call the read API and for which tenant: scopes of API keys, memberships of users.

Every read endpoint (REST, GraphQL, SQL, PromQL) derives from ``ReadView`` or calls ``tenant_id_for``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from ollystack.telemetry.api.params import ErrorBody
from tenants import logic

ERRORS: dict[int, OpenApiResponse] = {
    400: OpenApiResponse(ErrorBody, description="A parameter is malformed; the message names it."),
    401: OpenApiResponse(ErrorBody, description="Missing, unknown, revoked or expired API key."),
    403: OpenApiResponse(ErrorBody, description="The key lacks the scope, or no access to the tenant."),
}


class HasScope(BasePermission):
    """API keys need the view's ``required_scope``; signed-in users are checked by membership."""

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        scope = getattr(view, "required_scope", "read")
        if isinstance(principal, logic.ApiPrincipal) and not principal.allows(scope):
            raise exceptions.PermissionDenied(
                f"API key lacks the {scope!r} scope (it has {', '.join(principal.scopes) or 'none'}); "
                f"create one with `manage.py tenant create-key {principal.tenant_name} --kind api "
                f"--scopes {scope}`"
            )
        return True


def tenant_id_for(request: Request) -> str:
    """The tenant of the credentials; a ``tenant`` parameter only chooses among a user's memberships."""
    asked = request.query_params.get("tenant") or None
    principal = request.auth
    if isinstance(principal, logic.ApiPrincipal):
        if asked is not None and asked not in (principal.tenant_name, principal.tenant_id):
            raise exceptions.PermissionDenied(
                f"this API key belongs to tenant {principal.tenant_name}; it cannot read tenant {asked}"
            )
        return principal.tenant_id
    try:
        return logic.tenant_for_user(request.user, asked).tenant_id  # type: ignore[arg-type]
    except logic.TenantAmbiguous as exc:
        raise exceptions.ValidationError({"tenant": str(exc)}) from None
    except logic.TenantError as exc:
        raise exceptions.PermissionDenied(str(exc)) from None


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
    permission_classes = [IsAuthenticated, HasScope]
    required_scope = "read"
