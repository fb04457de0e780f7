"""UI pages: logs (placeholder until the page lands)."""

from typing import Any

from django.http import HttpRequest, HttpResponse

from ollystack.ui.pages import render_page, ui_page


@ui_page
def explorer(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return render_page(request, "ui/placeholder.html", "logs", "logs")
