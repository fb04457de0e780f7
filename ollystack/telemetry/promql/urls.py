"""Prometheus-compatible HTTP API, mounted under /prometheus/api/v1/."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
