"""Liveness and readiness probes; plain Django views so they work without authentication."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def engine_ready() -> tuple[bool, str]:
    """Whether the ClickHouse engine answers, and why not when it does not (never raises)."""
    try:
        from ollystack.clickhouse import get_backend

        if get_backend().ping():
            return True, ""
        return False, "ClickHouse did not answer a ping"
    except Exception as exc:  # a probe reports, it never raises
        return False, f"ClickHouse is not available: {exc}"


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the ClickHouse engine answers; the body says why not otherwise."""
    ready, reason = engine_ready()
    if ready:
        return JsonResponse({"status": "ready"})
    log.warning("not ready reason=%r", reason)
    return JsonResponse({"status": "unavailable", "reason": reason}, status=503)
