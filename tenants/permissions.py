"""The DRF permission class of every API endpoint: the caller's tenant, and the view's requirement.

Kept apart from ``ollystack.telemetry.api.access`` (which re-exports it) because DRF imports the default
permission class while ``rest_framework.views`` is loading: this module must not import any view.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from tenants import logic
from tenants.auth import JwtCredentials
from tenants.logic import Permission

log = logging.getLogger(__name__)

ACCESS_ATTRIBUTE = "tenant_access"


def required_permission(view: Any, method: str) -> Permission | None:
    """The view's declared requirement for ``method``; None when it declares none (refused)."""
    declared = getattr(view, "required_permission", None)
    if isinstance(declared, Mapping):
        found = declared.get(method.upper())
        if found is None and method.upper() in ("HEAD", "OPTIONS"):
            found = declared.get("GET")
        return Permission(found) if found is not None else None
    return Permission(declared) if declared is not None else None


def tenant_access(request: Request) -> logic.TenantAccess:
    """The caller's tenant and what they may do there (resolved once per request)."""
    cached = getattr(request, ACCESS_ATTRIBUTE, None)
    if isinstance(cached, logic.TenantAccess):
        return cached
    asked = request.query_params.get("tenant") or None
    principal = request.auth
    try:
        if isinstance(principal, logic.ApiPrincipal):
            if asked is not None and asked not in (principal.tenant_name, principal.tenant_id):
                raise exceptions.PermissionDenied(
                    f"this API key belongs to tenant {principal.tenant_name}; it cannot read tenant {asked}"
                )
            access = logic.access_for_key(principal)
        else:
            user = request.user
            if user is None or not user.is_authenticated:
                raise exceptions.NotAuthenticated()
            bound = principal.tenant_id if isinstance(principal, JwtCredentials) else None
            access = logic.access_for_user(user, asked, bound_tenant_id=bound)
    except logic.TenantAmbiguous as exc:
        message = str(exc)
        if isinstance(principal, JwtCredentials):
            message += ', or get a token for one tenant (POST /api/v1/auth/token with "tenant")'
        raise exceptions.ValidationError({"tenant": message}) from None
    except logic.TenantError as exc:
        raise exceptions.PermissionDenied(str(exc)) from None
    setattr(request, ACCESS_ATTRIBUTE, access)
    return access


class TenantPermission(BasePermission):
    """Enforces the view's ``required_permission`` for API keys, JWTs and sessions alike."""

    def has_permission(self, request: Request, view: Any) -> bool:
        required = required_permission(view, request.method or "GET")
        if required is None:
            log.error(
                "view without required_permission refused view=%s method=%s",
                type(view).__name__,
                request.method,
            )
            raise exceptions.PermissionDenied(
                f"this endpoint declares no required permission for {request.method}; it is refused until "
                "it does (server misconfiguration)"
            )
        if required == Permission.PUBLIC:
            return True
        if request.user is None or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        access = tenant_access(request)
        try:
            access.require(required)
        except logic.PermissionRefused as exc:
            raise exceptions.PermissionDenied(str(exc)) from None
        return True
