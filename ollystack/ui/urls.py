"""URLs of the browser UI (mounted at the site root)."""

from django.urls import path

from ollystack.ui import alerts, dashboards, logs, servicemap, services, traces, views

urlpatterns = [
    path("", views.index, name="ui-index"),
    path("tenant", views.switch_tenant, name="ui-switch-tenant"),
    path("services/", services.overview, name="ui-services"),
    path("services/<str:service>/", services.service, name="ui-service"),
    path("traces/", traces.search, name="ui-traces"),
    path("traces/<str:trace_id>/", traces.trace, name="ui-trace"),
    path("logs/", logs.explorer, name="ui-logs"),
    path("dashboards/", dashboards.index, name="ui-dashboards"),
    path("dashboards/<int:dashboard_id>/", dashboards.dashboard, name="ui-dashboard"),
    path("service-map/", servicemap.service_map, name="ui-service-map"),
    path("alerts/", alerts.index, name="ui-alerts"),
    path("alerts/rules/new/", alerts.rule_editor, name="ui-alert-rule-new"),
    path("alerts/rules/<int:rule_id>/", alerts.rule_editor, name="ui-alert-rule"),
]
