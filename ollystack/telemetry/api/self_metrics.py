"""``/metrics`` on the web server: the process's self-metrics for Prometheus (query cache hits and misses).

The embedded ``serve`` process already serves this registry on ``OLLYSTACK_METRICS_PORT``; production web
processes have no such listener, so ``OLLYSTACK_WEB_METRICS`` (on in the production profile) serves it
here. The figures carry no tenant data; keep the path internal at the reverse proxy all the same.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest.metrics import REGISTRY


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.OLLYSTACK_WEB_METRICS:
        raise Http404("self-metrics are served on OLLYSTACK_METRICS_PORT; set OLLYSTACK_WEB_METRICS=true")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
