"""Account pages: usage and self-service API keys."""

from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    path("usage/", views.usage, name="usage"),
    path("keys/", views.keys, name="keys"),
    path("keys/<int:key_id>/revoke/", views.key_revoke, name="key-revoke"),
]
