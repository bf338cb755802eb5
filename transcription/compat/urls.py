"""HTTP routes of the cloud-compatible APIs (their own paths, as the SDKs call them)."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("transcription.compat.openai.urls")),
    path("", include("transcription.compat.deepgram.urls")),
    path("", include("transcription.compat.assemblyai.urls")),
]
