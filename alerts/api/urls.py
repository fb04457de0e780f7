"""Alert rules, channels, silences, states, events and the delivery log under /api/v1/alerts/."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
