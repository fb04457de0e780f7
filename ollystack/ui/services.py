"""UI pages: services (placeholder until the page lands)."""

from typing import Any

from django.http import HttpRequest, HttpResponse

from ollystack.ui.pages import render_page, ui_page


@ui_page
def overview(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return render_page(request, "ui/placeholder.html", "services", "services")


@ui_page
def service(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return render_page(request, "ui/placeholder.html", "services", "services")
