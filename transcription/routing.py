"""WebSocket routes."""

from __future__ import annotations

from django.urls import path

from transcription import consumers

websocket_urlpatterns = [
    path("ws/transcribe", consumers.TranscribeConsumer.as_asgi()),
]
