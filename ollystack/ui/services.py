"""UI pages: the service overview (/services/) and one service (/services/<name>/).

Both pages are shells: their scripts read the REST API (services, RED series, operations, errors, slowest
requests) as the signed-in user, so rendering them costs no ClickHouse work.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from ollystack.ui.pages import render_page, ui_page


@ui_page
def overview(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return render_page(request, "ui/services.html", "services", "Services")


@ui_page
def service(request: HttpRequest, service: str, **kwargs: Any) -> HttpResponse:
    return render_page(
        request,
        "ui/service.html",
        "services",
        service,
        context={"service": service},
        config={"service": service},
    )
