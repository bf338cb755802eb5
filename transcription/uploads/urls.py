"""Routes of the transcription (upload) API under /api/v1/."""

from __future__ import annotations

from transcription.api.base import both_slashes
from transcription.uploads import api

urlpatterns = [
    *both_slashes("transcriptions", api.TranscriptionCreateView.as_view(), "api-transcription-create"),
    *both_slashes(
        "transcriptions/<str:session_id>", api.TranscriptionDetailView.as_view(), "api-transcription-detail"
    ),
]
