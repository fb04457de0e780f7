"""UI pages: trace search (/traces/) and one trace's waterfall (/traces/<trace_id>/).

Both pages are shells: their scripts read the REST API (/api/v1/traces, /api/v1/traces/<id>) as the
signed-in user, so the server does no ClickHouse work to render them.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from ollystack.ui.pages import render_page, ui_page

TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
NO_SPAN = "0" * 16


def reads(trace_id: str) -> dict[str, str]:
    """Where the page reads the trace: the waterfall (what places every span) and one span in full."""
    waterfall = reverse("api-trace-waterfall", kwargs={"trace_id": trace_id})
    span = reverse("api-trace-span", kwargs={"trace_id": trace_id, "span_id": NO_SPAN})
    return {"waterfallUrl": waterfall, "spanUrlPrefix": span.removesuffix(NO_SPAN)}


@ui_page
def search(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return render_page(request, "ui/traces.html", "traces", "Traces")


@ui_page
def trace(request: HttpRequest, trace_id: str, **kwargs: Any) -> HttpResponse:
    """A malformed id is answered here (status 404, with what an id looks like); a well-formed one the
    tenant does not have is found out by the script, which says so in the page."""
    valid = bool(TRACE_ID.match(trace_id))
    response = render_page(
        request,
        "ui/trace.html",
        "traces",
        f"Trace {trace_id[:8]}" if valid else "Trace",
        context={"trace_id": trace_id, "valid": valid},
        config={"traceId": trace_id.lower(), **reads(trace_id.lower())} if valid else {"traceId": None},
    )
    if not valid:
        response.status_code = 404
    return response
