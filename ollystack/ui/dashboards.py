"""Dashboard pages: the tenant's dashboards, and one dashboard's grid of panels.

The list is rendered here from ``ollystack.telemetry.dashboards``; a dashboard's page gets its definition
in ``window.OLLY`` and its script fetches each panel's data from the read endpoints (PromQL and SQL),
edits through the REST API and listens on ``ws/dashboards/<id>/`` for saves and live data.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse

from ollystack.telemetry import dashboards as logic
from ollystack.telemetry.api.dashboards import dashboard_json
from ollystack.ui.pages import UiContext, render_page, ui_page


def _ui(request: HttpRequest) -> UiContext:
    return request.ui  # type: ignore[attr-defined]


@ui_page
def index(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    found = logic.list_dashboards(_ui(request).access.tenant_id)
    return render_page(
        request,
        "ui/dashboards.html",
        "dashboards",
        "Dashboards",
        context={"dashboards": found, "limit": logic.MAX_LIST},
    )


@ui_page
def dashboard(request: HttpRequest, dashboard_id: int, **kwargs: Any) -> HttpResponse:
    ui = _ui(request)
    try:
        found = logic.get_dashboard(ui.access.tenant_id, dashboard_id)
    except logic.NotFound:
        raise Http404(f"no dashboard {dashboard_id} in tenant {ui.access.tenant_name}") from None
    return render_page(
        request,
        "ui/dashboard.html",
        "dashboards",
        found.name,
        context={"dashboard": found},
        config={
            "dashboard": dashboard_json(found),
            "maxPoints": logic.MAX_POINTS,
            "maxPanels": logic.MAX_PANELS,
        },
    )
