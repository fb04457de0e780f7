"""The site's URLs plus the trace page's read endpoints (ollystack.telemetry.api.trace_views) under /api/v1/,
for tests that must not depend on where the site mounts them."""

from django.urls import include, path

from ollystack.telemetry.api import trace_views
from ollystack.urls import urlpatterns as site

urlpatterns = [path("api/v1/", include(trace_views.urlpatterns)), *site]
