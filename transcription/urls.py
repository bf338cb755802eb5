"""HTTP routes of the transcription app."""

from __future__ import annotations

from django.urls import path

from transcription import ops_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("health", ops_views.health, name="health"),
    path("api/config", ops_views.config, name="api-config"),
    path("api/metrics", ops_views.metrics, name="api-metrics"),
]
