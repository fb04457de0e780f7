"""Top-level URLs: the UI, sign-in, start page, health, admin, REST API and its schema."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ollystack import health, views
from ollystack.telemetry.api import self_metrics
from ollystack.telemetry.api.graphql import GraphQLEndpoint

urlpatterns = [
    path("start/", views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("ollystack.telemetry.api.urls")),
    path("api/v1/", include("tenants.api.urls")),
    path("api/v1/alerts/", include("alerts.api.urls")),
    path("prometheus/api/v1/", include("ollystack.telemetry.promql.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("graphql/", GraphQLEndpoint.as_view(), name="graphql"),
    path("metrics", self_metrics.metrics, name="self-metrics"),
    path("", include("ollystack.ui.urls")),
]
