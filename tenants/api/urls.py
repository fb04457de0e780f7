"""Tenant endpoints under /api/v1/."""

from django.urls import path

from tenants.api import views

urlpatterns = [
    path("usage", views.UsageView.as_view(), name="api-usage"),
]
