"""RED time series of services and operations (sparklines, per-operation charts)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
