"""Routes of /api/v1/ (each also answers without its trailing slash)."""

from __future__ import annotations

from django.urls import path

from accounts import api as accounts_api
from transcription.api import schema, views  # noqa: F401 (schema registers)
from transcription.uploads import api as transcriptions


def _both(route: str, view, name: str) -> list:
    return [path(f"{route}/", view, name=name), path(route, view)]


urlpatterns = [
    *_both("sessions", views.SessionListView.as_view(), "api-session-list"),
    *_both("sessions/<str:session_id>", views.SessionDetailView.as_view(), "api-session-detail"),
    *_both(
        "sessions/<str:session_id>/export/<str:fmt>", views.SessionExportView.as_view(), "api-session-export"
    ),
    *_both("segments", views.SegmentSearchView.as_view(), "api-segment-search"),
    *_both("usage", accounts_api.UsageView.as_view(), "api-usage"),
    *_both("keys", accounts_api.ApiKeyListCreateView.as_view(), "api-key-list"),
    *_both("keys/<str:key_id>", accounts_api.ApiKeyRevokeView.as_view(), "api-key-revoke"),
    *_both("transcriptions", transcriptions.TranscriptionCreateView.as_view(), "api-transcription-create"),
    *_both(
        "transcriptions/<str:session_id>",
        transcriptions.TranscriptionDetailView.as_view(),
        "api-transcription-detail",
    ),
]
