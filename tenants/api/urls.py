"""Tenant endpoints under /api/v1/."""

from django.urls import path

from tenants.api import views

urlpatterns = [
    path("usage", views.UsageView.as_view(), name="api-usage"),
    path("auth/token", views.TokenView.as_view(), name="api-token"),
    path("auth/token/refresh", views.TokenRefreshView.as_view(), name="api-token-refresh"),
    path("members", views.MembersView.as_view(), name="api-members"),
    path("members/<str:username>", views.MemberView.as_view(), name="api-member"),
    path("keys", views.KeysView.as_view(), name="api-keys"),
    path("keys/<str:key_id>/revoke", views.KeyRevokeView.as_view(), name="api-key-revoke"),
]
