"""UI pages: traces (placeholder until the page lands)."""

from typing import Any

from django.http import HttpRequest, HttpResponse

from ollystack.ui.pages import render_page, ui_page


@ui_page
def search(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return render_page(request, "ui/placeholder.html", "traces", "traces")


@ui_page
def trace(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return render_page(request, "ui/placeholder.html", "traces", "traces")
