"""UI pages: dashboards (placeholder until the page lands)."""

from typing import Any

from django.http import HttpRequest, HttpResponse

from ollystack.ui.pages import render_page, ui_page


@ui_page
def index(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return render_page(request, "ui/placeholder.html", "dashboards", "dashboards")


@ui_page
def dashboard(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return render_page(request, "ui/placeholder.html", "dashboards", "dashboards")
