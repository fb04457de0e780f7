"""REST read API, mounted under /api/v1/."""

from django.urls import path

from ollystack.telemetry.api import dashboards, log_views, series, sql, trace_views, views

urlpatterns = [
    path("traces", views.TraceSearchView.as_view(), name="api-trace-search"),
    path("traces/<str:trace_id>", views.TraceView.as_view(), name="api-trace"),
    path("services", views.ServicesView.as_view(), name="api-services"),
    path("services/names", views.ServiceNamesView.as_view(), name="api-service-names"),
    path("services/<str:service>/operations", views.OperationsView.as_view(), name="api-operations"),
    path("logs", views.LogsView.as_view(), name="api-logs"),
    path("metrics", views.MetricsView.as_view(), name="api-metrics"),
    path("metrics/names", views.MetricNamesView.as_view(), name="api-metric-names"),
    path("metrics/labels", views.MetricLabelsView.as_view(), name="api-metric-labels"),
    path("metrics/labels/<str:label>/values", views.MetricLabelValuesView.as_view(), name="api-label-values"),
    path("errors", views.ErrorsView.as_view(), name="api-errors"),
    path("topology", views.TopologyView.as_view(), name="api-topology"),
    path("sql", sql.SqlView.as_view(), name="api-sql"),
    *series.urlpatterns,
    *trace_views.urlpatterns,
    *log_views.urlpatterns,
    *dashboards.urlpatterns,
]
