"""HTTP routes of the transcription app."""

from __future__ import annotations

from django.urls import path

from transcription.ops import views as ops_views
from transcription.web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("health", ops_views.health, name="health"),
    path("api/config", ops_views.ConfigView.as_view(), name="api-config"),
    path("api/metrics", ops_views.metrics, name="api-metrics"),
    path("metrics", ops_views.prometheus, name="metrics"),
    # Web UI
    path("live/", views.live, name="live"),
    path("live/warm-up/", views.live_warmup, name="live-warmup"),
    path("upload/", views.upload, name="upload"),
    path("history/", views.history, name="history"),
    path("history/<uuid:session_id>/", views.session_detail, name="session-detail"),
    path("history/<uuid:session_id>/delete/", views.session_delete, name="session-delete"),
]
