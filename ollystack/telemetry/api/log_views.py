"""Log histogram (records per severity over time) for the log explorer."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
