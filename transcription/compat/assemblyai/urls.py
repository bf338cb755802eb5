"""HTTP routes of AssemblyAI's streaming API: its temporary tokens."""

from __future__ import annotations

from django.urls import path

from transcription.compat.assemblyai.token import streaming_token

urlpatterns = [
    path("v3/token", streaming_token, name="assemblyai-token"),
]
