"""Prometheus-compatible HTTP API, mounted under /prometheus/api/v1/."""

from django.urls import URLPattern, path

from ollystack.telemetry.promql import views

urlpatterns: list[URLPattern] = [
    path("query", views.QueryView.as_view(), name="promql-query"),
    path("query_range", views.QueryRangeView.as_view(), name="promql-query-range"),
    path("series", views.SeriesView.as_view(), name="promql-series"),
    path("labels", views.LabelsView.as_view(), name="promql-labels"),
    path("label/<str:name>/values", views.LabelValuesView.as_view(), name="promql-label-values"),
    path("metadata", views.MetadataView.as_view(), name="promql-metadata"),
    path("status/buildinfo", views.BuildInfoView.as_view(), name="promql-buildinfo"),
    path("query_exemplars", views.ExemplarsView.as_view(), name="promql-exemplars"),
]
