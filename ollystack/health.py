"""Liveness and readiness probes; plain Django views so they work without authentication."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the ClickHouse engine answers; the body says why not otherwise."""
    try:
        from ollystack.clickhouse import get_backend

        if get_backend().ping():
            return JsonResponse({"status": "ready"})
        reason = "ClickHouse did not answer a ping"
    except Exception as exc:  # a probe reports, it never raises
        reason = f"ClickHouse is not available: {exc}"
    log.warning("not ready reason=%r", reason)
    return JsonResponse({"status": "unavailable", "reason": reason}, status=503)
