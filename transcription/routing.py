"""WebSocket routes: one consumer per wire protocol, and a 404 for a path that has none."""

from __future__ import annotations

from django.urls import path

from sttproject.daphne import denial_responses
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


def has_route(scope: dict, routes=websocket_urlpatterns) -> bool:
    """Whether one of `routes` serves the scope's path (matched as channels' URLRouter does)."""
    where, root = scope.get("path", ""), scope.get("root_path", "")
    if root:
        if not where.startswith(root):
            return False
        where = where[len(root) :]
    return any(route.pattern.match(where.lstrip("/")) for route in routes)


class UnknownPathRefusal:
    """A WebSocket to a path with no endpoint is refused at the handshake with HTTP 404 (before any
    credential or origin check, and without the router's unhandled "No route found"). Under a server
    that cannot send a status (neither Daphne with sttproject/daphne.py nor one with ASGI's
    denial-response extension) the refusal is ASGI's plain one: HTTP 403.
    """

    def __init__(self, app, routes=websocket_urlpatterns) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket" or has_route(scope, self.routes):
            return await self.app(scope, receive, send)
        await receive()  # websocket.connect
        if denial_responses(scope):
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
            await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": b"No WebSocket endpoint here."})
        else:
            await send({"type": "websocket.close"})
