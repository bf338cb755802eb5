"""Routes of /api/v1/ (each also answers without its trailing slash)."""

from __future__ import annotations

from accounts import api as accounts_api
from transcription.api import schema, views  # noqa: F401 (schema registers)
from transcription.api.base import both_slashes
from transcription.recordings.api import SessionAudioView

urlpatterns = [
    *both_slashes("sessions", views.SessionListView.as_view(), "api-session-list"),
    *both_slashes("sessions/<str:session_id>", views.SessionDetailView.as_view(), "api-session-detail"),
    *both_slashes("sessions/<str:session_id>/audio", SessionAudioView.as_view(), "api-session-audio"),
    *both_slashes(
        "sessions/<str:session_id>/segments", views.SessionSegmentListView.as_view(), "api-session-segments"
    ),
    *both_slashes(
        "sessions/<str:session_id>/segments/<str:index>",
        views.SegmentEditView.as_view(),
        "api-session-segment",
    ),
    *both_slashes(
        "sessions/<str:session_id>/speakers/<str:label>",
        views.SessionSpeakerView.as_view(),
        "api-session-speaker",
    ),
    *both_slashes(
        "sessions/<str:session_id>/export/<str:fmt>", views.SessionExportView.as_view(), "api-session-export"
    ),
    *both_slashes("segments", views.SegmentSearchView.as_view(), "api-segment-search"),
    *both_slashes("usage", accounts_api.UsageView.as_view(), "api-usage"),
    *both_slashes("keys", accounts_api.ApiKeyListCreateView.as_view(), "api-key-list"),
    *both_slashes("tokens", accounts_api.StreamTokenView.as_view(), "api-token-create"),
    *both_slashes("keys/<str:key_id>", accounts_api.ApiKeyRevokeView.as_view(), "api-key-revoke"),
]
