"""UI page: the log explorer (search, severity histogram, records) and its live tail."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from ollystack.telemetry.log_histogram import SEVERITIES, SEVERITY_FLOORS
from ollystack.ui.pages import render_page, ui_page

TAIL_ROWS = 500


@ui_page
def explorer(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """Filters live in the query string (``?text=…&service=…&severity=…&trace_id=…&attr.<key>=…``), so
    the trace and service pages link here with theirs; the script reads them."""
    return render_page(
        request,
        "ui/logs.html",
        "logs",
        "Logs",
        context={"severities": list(SEVERITY_FLOORS)},
        config={
            "severities": list(SEVERITIES),
            "tracesPath": reverse("ui-traces"),
            "tailPath": "/ws/logs/tail/",
            "tailRows": TAIL_ROWS,
        },
    )
