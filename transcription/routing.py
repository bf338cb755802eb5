"""WebSocket routes."""

from __future__ import annotations

from django.urls import path

from transcription import compat_consumers, consumers, v1_stream_consumers

websocket_urlpatterns = [
    path("ws/transcribe", consumers.TranscribeConsumer.as_asgi()),
    path("api/v1/ws", compat_consumers.ApiV1Consumer.as_asgi()),
    path("stt/v3/stream", compat_consumers.SttV3Consumer.as_asgi()),
    path("v1/stream/control", v1_stream_consumers.V1StreamControlConsumer.as_asgi()),
    path("v1/stream/audio", v1_stream_consumers.V1StreamAudioConsumer.as_asgi()),
]
