"""WebSocket routes (filled by the streaming endpoints)."""

from __future__ import annotations

websocket_urlpatterns: list = []
