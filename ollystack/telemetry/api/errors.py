"""Every API error is JSON ``{"error": "<what went wrong and what to do>"}`` with a fitting status."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tenants.auth import AUTH_HELP

log = logging.getLogger(__name__)

NON_FIELD_KEYS = {"non_field_errors", "detail"}


def flatten(detail: Any) -> str:
    """One readable line from DRF's nested error details (``param: message; other: message``)."""
    if isinstance(detail, dict):
        parts = []
        for key, value in detail.items():
            text = flatten(value)
            parts.append(text if key in NON_FIELD_KEYS else f"{key}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list | tuple):
        return "; ".join(flatten(item) for item in detail)
    return str(detail)


def _storage_unavailable(exc: Exception) -> str | None:
    try:
        from ollystack.clickhouse import EngineLockedError
    except ImportError:
        return None
    if isinstance(exc, EngineLockedError):
        return str(exc)
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "not found")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "permission denied")
    if isinstance(exc, exceptions.NotAuthenticated):
        exc.detail = exceptions.ErrorDetail("authentication required: " + AUTH_HELP, "not_authenticated")

    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = {"error": flatten(response.data)}
        return response

    unavailable = _storage_unavailable(exc)
    if unavailable is not None:
        return Response({"error": unavailable}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    view = context.get("view")
    log.exception("api error view=%s", type(view).__name__ if view else "?", exc_info=exc)
    return Response(
        {"error": f"internal error ({type(exc).__name__}); the server log has the details"},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
