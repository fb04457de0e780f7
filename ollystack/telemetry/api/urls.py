"""REST read API, mounted under /api/v1/."""

from django.urls import path

from ollystack.telemetry.api import sql, views

urlpatterns = [
    path("traces/<str:trace_id>", views.TraceView.as_view(), name="api-trace"),
    path("services", views.ServicesView.as_view(), name="api-services"),
    path("logs", views.LogsView.as_view(), name="api-logs"),
    path("metrics", views.MetricsView.as_view(), name="api-metrics"),
    path("metrics/names", views.MetricNamesView.as_view(), name="api-metric-names"),
    path("sql", sql.SqlView.as_view(), name="api-sql"),
]
