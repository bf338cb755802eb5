"""HTTP routes of Deepgram's API: the pre-recorded POST /v1/listen (the live one is a WebSocket route)."""

from __future__ import annotations

from django.urls import path

from transcription.compat.deepgram.prerecorded import listen

urlpatterns = [
    path("v1/listen", listen, name="deepgram-listen"),
]
