"""WebSocket routes: one consumer per wire protocol."""

from __future__ import annotations

from django.urls import path

from transcription.compat.assemblyai.live import AssemblyAIConsumer
from transcription.compat.deepgram.live import DeepgramLiveConsumer
from transcription.streaming.protocols.api_v1 import ApiV1Consumer
from transcription.streaming.protocols.stt_v3 import SttV3Consumer
from transcription.streaming.protocols.v1_stream.audio import V1StreamAudioConsumer
from transcription.streaming.protocols.v1_stream.control import V1StreamControlConsumer
from transcription.streaming.protocols.ws_transcribe import TranscribeConsumer

websocket_urlpatterns = [
    path("ws/transcribe", TranscribeConsumer.as_asgi()),
    path("api/v1/ws", ApiV1Consumer.as_asgi()),
    path("stt/v3/stream", SttV3Consumer.as_asgi()),
    path("v1/stream/control", V1StreamControlConsumer.as_asgi()),
    path("v1/stream/audio", V1StreamAudioConsumer.as_asgi()),
    # Cloud-compatible streams: Deepgram's live /v1/listen, AssemblyAI's Universal-Streaming /v3/ws.
    path("v1/listen", DeepgramLiveConsumer.as_asgi()),
    path("v3/ws", AssemblyAIConsumer.as_asgi()),
]
