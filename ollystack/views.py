"""Server-rendered pages of the platform itself."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ollystack.health import engine_ready


def home(request: HttpRequest) -> HttpResponse:
    """Where to send telemetry and where to read it back."""
    return render(
        request,
        "home.html",
        {
            "ready": engine_ready()[0],
            "host": request.get_host().rsplit(":", 1)[0],
            "grpc_port": settings.OLLYSTACK_OTLP_GRPC_PORT,
            "otlp_http_port": settings.OLLYSTACK_OTLP_HTTP_PORT,
        },
    )
